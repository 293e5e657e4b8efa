"""The demo (``make demo``: ``mixopt optimize --config configs/demo.yaml``): phases and outcome.

What a user of the default experiment gets: how long each phase of the flow takes, and whether
the chosen mixture beats the uniform and natural baselines at the target scale, paired by seed
(``proxies.compare``: the 95% interval of each per-seed difference above 0). The figures are read
from the files of a finished experiment folder (the proxy and target run records' start and end
times, ``target_runs_meta.parquet``, ``chosen.json``; ``comparison.parquet`` marks it finished),
so a demo run made elsewhere can be recorded without running it again. With ``run`` the case runs
the command itself first (the whole demo: it trains every model).
"""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.suite import ROOT, Case, Params, Table, fmt
from configs.experiment import ExperimentDir
from mixtures.errors import DataError
from mixtures.report import PAIRED_COLUMNS


class DemoParams(Params):
    """The demo's phase timings and its chosen mixture against the baselines."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "config": "configs/smoke.yaml",
        "run": True,
        "fresh_corpus": True,
        "overrides": [
            "sweep.n_runs=4",
            "target_run.seeds=[0, 1]",
            "proxy.train_tokens=2048",
            "target_run.train.train_tokens=2048",
        ],
    }

    experiment: str | None = None
    """A finished experiment folder to record (default: a new one in the scratch folder when
    ``run``, else runs/demo)."""
    config: str = "configs/demo.yaml"
    run: bool = False
    """Run ``mixopt optimize`` into the folder first (its wall time is recorded too)."""
    fresh_corpus: bool = False
    """With ``run``: build the corpus in the scratch folder instead of the config's cache."""
    overrides: list[str] = []
    """With ``run``: ``--set`` values for ``mixopt optimize`` (``sweep.n_runs=4``)."""


def run_demo(p: DemoParams, exp: Path, work: Path) -> float:
    """Seconds of ``mixopt optimize`` (command start to exit) into ``exp``."""
    cmd = [sys.executable, "-m", "cli.main", "optimize", "--config", p.config]
    cmd += ["--experiment-dir", str(exp)]
    sets = [*p.overrides, *([f"corpus.cache_dir={work / 'corpus'}"] if p.fresh_corpus else [])]
    for value in sets:
        cmd += ["--set", value]
    (work / "prefect").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)  # the command's own temporary server, not a user's
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def records(folder: Path) -> list[dict[str, Any]]:
    recs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    if not recs:
        raise DataError(f"no run records in {folder}: is the experiment finished?")
    return recs


def phase_rows(exp: ExperimentDir) -> list[dict[str, Any]]:
    """Phases from the run records' times: setup and corpus (flow start to the first proxy),
    the sweep, surrogates and choice (last proxy to first target run), the target runs. A
    rerun of a finished flow restarts the clock but trains nothing: its setup phase is n/a."""
    started = json.loads((exp.root / "meta.json").read_text())["started_at"]
    flow_start: float | None = calendar.timegm(time.strptime(started, "%Y-%m-%dT%H:%M:%SZ"))
    proxies, targets = records(exp.proxy_store), records(exp.target_store)

    def span(recs: list[dict[str, Any]]) -> tuple[float, float]:
        return min(r["started_at"] for r in recs), max(r["finished_at"] for r in recs)

    def speed(recs: list[dict[str, Any]]) -> str:
        tps = sorted(r["result"]["tokens_per_second"] for r in recs)
        return f"{len(recs)} runs, median {tps[len(tps) // 2]:.0f} tokens/s"

    (p0, p1), (t0, t1) = span(proxies), span(targets)
    if flow_start is not None and flow_start > p0 + 1:  # meta.json of a later rerun
        flow_start = None
    phases = [
        ("setup and corpus", None if flow_start is None else p0 - flow_start, ""),
        ("proxy sweep", p1 - p0, speed(proxies)),
        ("surrogates and choice", t0 - p1, ""),
        ("target runs", t1 - t0, speed(targets)),
        ("flow in all", t1 - (p0 if flow_start is None else flow_start), ""),
    ]
    return [{"kind": "phase", "phase": n, "seconds": s, "detail": d} for n, s, d in phases]


def outcome_rows(exp: ExperimentDir) -> list[dict[str, Any]]:
    """Chosen mixture and baselines at the target scale: mean, std and value per seed, and for
    each baseline the comparison with the chosen mixture paired by seed. The comparison is
    recomputed from ``target_runs_meta.parquet``, so an experiment finished by an earlier build
    gets the current verdict."""
    import polars as pl

    from proxies.compare import compare_target_runs

    meta = pl.read_parquet(exp.target_meta)
    comparison = compare_target_runs(meta)
    ok = meta.filter(pl.col("status") == "ok")
    chosen = json.loads(exp.chosen.read_text())
    rows = []
    for r in comparison.iter_rows(named=True):
        seeds = ok.filter(pl.col("label") == r["label"]).sort("seed")
        paired = {k: r[k] for k in PAIRED_KEYS} if r["label"] != "chosen" else {}
        rows.append(
            {
                "kind": "mixture",
                "mixture": r["label"],
                "mean": r["mean"],
                "std": r["std"],
                "per_seed": seeds["target"].to_list(),
                "beats_all_baselines": bool(r["beats_all_baselines"]),
                **paired,
                **({"weights": chosen["mixture"]} if r["label"] == "chosen" else {}),
            }
        )
    return rows


#: The paired comparison of a baseline with the chosen mixture, as a result row keeps it.
PAIRED_KEYS = (*PAIRED_COLUMNS, "seeds_needed")


def run(p: DemoParams, work: Path) -> list[dict[str, Any]]:
    default = work / "experiment" if p.run else ROOT / "runs" / "demo"
    exp = Path(p.experiment) if p.experiment else default
    rows = []
    if p.run:
        seconds = run_demo(p, exp, work)
        detail = f"`mixopt optimize --config {p.config}`, start to exit"
        rows.append({"kind": "phase", "phase": "command", "seconds": seconds, "detail": detail})
    folder = ExperimentDir(exp)
    if not folder.comparison.is_file():
        raise DataError(f"{exp} is not a finished experiment (no {folder.comparison.name})")
    return phase_rows(folder) + rows + outcome_rows(folder)


def tables(rows: list[dict[str, Any]]) -> list[Table]:
    phases = [
        [r["phase"], fmt(r["seconds"], ".0f"), r["detail"]] for r in rows if r["kind"] == "phase"
    ]
    mixtures = [r for r in rows if r["kind"] == "mixture"]
    outcome = [
        [
            f"**{r['mixture']}**" if r["beats_all_baselines"] else r["mixture"],
            fmt(r["mean"], ".3f"),
            fmt(r["std"], ".3f"),
            ", ".join(fmt(v, ".3f") for v in r["per_seed"]),
        ]
        for r in mixtures
    ]
    header = ["mixture", "target mean", "std over seeds", "per seed"]
    # results recorded before the comparison was paired have no verdict to show
    if any("verdict" in r for r in mixtures):
        from mixtures.report import paired_text

        for cells, r in zip(outcome, mixtures, strict=True):
            label = {**r, "label": r["mixture"]}
            cells.append(paired_text(label) if "verdict" in r else _chosen_cell(r))
        header.append("chosen against it, paired by seed")
    return [(["phase", "seconds", "detail"], phases), (header, outcome)]


def _chosen_cell(r: dict[str, Any]) -> str:
    return (
        "beats every baseline" if r["beats_all_baselines"] else "not shown to beat every baseline"
    )


CASES = [Case(name="demo", params=DemoParams, run=run, tables=tables)]
