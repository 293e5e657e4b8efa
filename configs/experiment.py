"""The experiment folder and the experiment plan, typed: every stage names its files and reads
the plan through these, never through spelled-out file names or dict keys.

An experiment folder (default ``runs/<experiment name>/``) holds::

    config.yaml             the resolved config of these results (configs.binding)
    meta.json               seed, git sha and start time of the last run
    plan.json               Plan: domains, bounds, token counts, baselines (fixed once per corpus)
    proxy_runs/             one JSON record per proxy run (RunStore), written atomically
    runs.parquet            run table of the sweep (+ BO rounds): run_id, domain, weight, metrics
    runs_meta.parquet       per-run status, wall time, throughput, error (every status)
    runs_bo*.parquet        ``search.bo_proxy``: the BO rounds' runs at the larger scale
    bo_round_NN.json        the mixtures each BO round proposed (a rerun asks them again)
    merge_runs/             ``search.merge``: the shared trunk and the experts (weights + records)
    runs_merged.parquet     ``search.merge``: merged estimates of candidate mixtures (fidelity
                            ``merged``), not trained runs
    merge.json              the experts' ids, cost in proxy runs, and the merged estimates'
                            agreement with the sweep's trained runs
    surrogates.parquet      cross-validated quality of every surrogate
    surrogate_oof.json      out-of-fold predictions of the chosen surrogate
    chosen.json             the chosen mixture, its prediction and the surrogate used
    export/                 the mixture in trainers' formats
    target_runs/            run records of the target-scale runs
    target_runs_meta.parquet, comparison.parquet   the target runs and their comparison
    target_handoff.json     where the chosen mixture's target run went (a deployment or inline)
    report.md, summary.json, plots/                the report
    previous/<UTC time>/    results of an earlier config, moved aside by ``--force``

Everything but the run stores (``proxy_runs/``, ``merge_runs/``, ``target_runs/``) and
``previous/`` is the result set of one config (``ExperimentDir.result_files``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from mixtures.constraints import Bounds
from mixtures.errors import DataError
from mixtures.io import write_json

#: Default parent of experiment folders, relative to the working directory.
DEFAULT_RUNS_ROOT = Path("runs")


@dataclass(frozen=True)
class ExperimentDir:
    """The files of one experiment folder. Paths only: nothing is created or read here."""

    root: Path

    @classmethod
    def of(cls, name: str, override: str | Path | None = None) -> ExperimentDir:
        """``override`` when given, else ``runs/<name>``."""
        return cls(Path(override) if override else DEFAULT_RUNS_ROOT / name)

    def resolved(self) -> ExperimentDir:
        """The same folder as an absolute path (for processes started elsewhere)."""
        return ExperimentDir(self.root.resolve())

    def __str__(self) -> str:
        return str(self.root)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def proxy_store(self) -> Path:
        return self.root / "proxy_runs"

    @property
    def target_store(self) -> Path:
        return self.root / "target_runs"

    @property
    def merge_store(self) -> Path:
        return self.root / "merge_runs"

    @property
    def merge(self) -> Path:
        return self.root / "merge.json"

    def table(self, stem: str = "runs") -> Path:
        """Run table ``<stem>.parquet`` (``runs`` for the sweep, ``runs_bo`` for bo_proxy)."""
        return self.root / f"{stem}.parquet"

    def table_meta(self, stem: str = "runs") -> Path:
        return self.root / f"{stem}_meta.parquet"

    def bo_round(self, index: int) -> Path:
        return self.root / f"bo_round_{index:02d}.json"

    @property
    def surrogates(self) -> Path:
        return self.root / "surrogates.parquet"

    @property
    def surrogate_oof(self) -> Path:
        return self.root / "surrogate_oof.json"

    @property
    def chosen(self) -> Path:
        return self.root / "chosen.json"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def target_meta(self) -> Path:
        return self.root / "target_runs_meta.parquet"

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.parquet"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def target_handoff(self) -> Path:
        return self.root / "target_handoff.json"

    @property
    def previous(self) -> Path:
        """Where ``--force`` moves the results of an earlier config."""
        return self.root / "previous"

    def result_files(self) -> list[Path]:
        """The files and folders of the result set that exist: everything written for one
        config, not the run stores (shared: run ids hash what a run depends on) nor
        ``previous/``."""
        named = [
            self.config,
            self.meta,
            self.plan,
            self.surrogates,
            self.surrogate_oof,
            self.merge,
            self.chosen,
            self.export,
            self.target_meta,
            self.comparison,
            self.target_handoff,
            self.report,
            self.summary,
            self.plots,
        ]
        if not self.root.is_dir():
            return []
        tables = [*self.root.glob("runs*.parquet"), *self.root.glob("bo_round_*.json")]
        return sorted({p for p in [*named, *tables] if p.exists()})


class Plan(BaseModel):
    """What an experiment fixes once its corpus is known: which domains train and which are
    evaluated, the weight bounds, the true token counts behind the prior, the natural mixture
    and the repetition bound, and the baselines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_dir: str
    corpus_fingerprint: str
    train_domains: list[str]
    eval_domains: list[str]
    tokens: dict[str, int]
    """Tokens of each training domain's whole source (``TokenCorpus.tokens("source")``)."""
    tokens_estimated: dict[str, bool]
    """Per training domain: its source count is estimated (only a capped share tokenized)."""
    production_tokens: int
    """Token budget of the run the mixture is for: the repetition bound and the exports."""
    lower: list[float]
    upper: list[float]
    baselines: dict[str, dict[str, float]]

    def bounds(self) -> Bounds:
        return Bounds(tuple(self.train_domains), np.array(self.lower), np.array(self.upper))

    def prior(self) -> np.ndarray:
        """Token shares of the training domains, in ``train_domains`` order."""
        counts = np.array([float(self.tokens[d]) for d in self.train_domains])
        return counts / counts.sum()

    def write(self, path: str | Path) -> Path:
        return write_json(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls, path: str | Path) -> Plan:
        p = Path(path)
        try:
            return cls.model_validate_json(p.read_bytes())
        except FileNotFoundError:
            raise DataError(f"no experiment plan at {p}: run `mixopt sweep` first") from None
        except ValueError as err:
            raise DataError(f"experiment plan {p} is not valid: {err}") from None


@dataclass(frozen=True)
class RunTables:
    """Where a set of runs was collected: the run table of its ok runs (None when no run
    finished ok) and the metadata of every run; ``n_ok`` runs are in the table."""

    table: str | None
    meta: str
    n_ok: int
