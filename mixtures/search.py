"""The search stages of ``optimize_mixture`` on its run tables, as plain functions.

- ``surrogate_quality``: k-fold out-of-fold quality of each compared surrogate on the sweep;
  ``pick_surrogate`` takes the requested one, or for ``auto`` the best cross-validated Spearman;
  ``weak_support`` warns when that Spearman is not positive.
- ``choose_mixture``: RegMix's choice (fit on every run, simulate, average the top-k).
- ``propose_round``: the mixtures one BO round trains, kept in a record file so that a rerun
  asks the same mixtures instead of proposing again.
- ``bo_optimizer`` / ``choose_at_bo_scale``: BO with every result so far; with runs at a larger
  scale (``bo_proxy``) the sweep becomes the GP's low-fidelity prior and the rounds' runs the
  observations, and the choice is the GP's on those runs.

Everything is passed in as plain values (domains, bounds, prior, seeds, surrogate objects), so
the stages run and are tested without a config or Prefect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, DataError
from mixtures.evaluation import kfold_predictions, score
from mixtures.io import write_json
from mixtures.mixture import Mixture
from mixtures.optimizers import BO_CANDIDATES, BOOptimizer, Optimizer, RegMixOptimizer
from mixtures.runtable import RunTable
from mixtures.surrogates import LowFidelityPrior, Surrogate

#: SeedSequence spawn key of the search (the sweep's sampler uses 1): changing the sweep never
#: shifts the search's random numbers.
SEARCH_STREAM = 2
#: The metric of the run tables that the search minimizes.
TARGET_METRIC = "target"
#: Run-table weights sum to 1 within float error; mixtures built from them allow this much.
WEIGHT_TOLERANCE = 1e-5
#: Decimals of the chosen mixture's weights as recorded.
CHOSEN_DECIMALS = 6
#: Columns of the surrogate-quality table and their types (a correlation is null when undefined).
QUALITY_SCHEMA: dict[str, pl.DataType] = {
    "surrogate": pl.Utf8(),
    "runs": pl.Int64(),
    "folds": pl.Int64(),
    "spearman": pl.Float64(),
    "pearson": pl.Float64(),
    "mae": pl.Float64(),
}


@dataclass(frozen=True)
class SearchSpace:
    """Where the search looks: weight bounds over the domains (sorted) and the prior (token
    shares, in the same order) that candidate mixtures are drawn around."""

    bounds: Bounds
    prior: np.ndarray

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.bounds.domains)


@dataclass(frozen=True)
class Quality:
    """Cross-validated quality of the compared surrogates: one row per surrogate
    (``QUALITY_SCHEMA``), and the out-of-fold predictions behind the rows."""

    folds: int
    rows: list[dict[str, Any]]
    measured: list[float]
    predicted: dict[str, list[float]]

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=QUALITY_SCHEMA)

    def oof(self) -> dict[str, Any]:
        """The out-of-fold record: ``{"measured": [...], "predicted": {surrogate: [...]}}``."""
        return {"measured": self.measured, "predicted": self.predicted}


def search_seed(seed: int, index: int = 0) -> int:
    """The search's seed for step ``index`` of an experiment with ``seed``: 0 for the RegMix
    choice, ``r + 1`` for BO round ``r``, ``rounds + 1`` for the choice after the rounds."""
    ss = np.random.SeedSequence(seed, spawn_key=(SEARCH_STREAM, index))
    return int(ss.generate_state(1)[0])


def compared_surrogates(compare: Sequence[str], requested: str) -> list[str]:
    """The surrogates to cross-validate: ``compare`` and the ``requested`` one (unless
    ``auto``), each once, in that order."""
    names = [*compare] if requested == "auto" else [*compare, requested]
    return list(dict.fromkeys(names))


def surrogate_quality(
    models: Mapping[str, Surrogate],
    table: RunTable,
    domains: Sequence[str],
    *,
    folds: int,
    seed: int,
) -> Quality:
    """k-fold (at most one fold per run) out-of-fold ``score`` of each unfitted surrogate in
    ``models`` (name -> surrogate) on the runs of ``table``; folds drawn with ``seed``."""
    x, y = table.weights(domains), table.target(TARGET_METRIC)
    k = min(folds, len(y))
    rows, predicted = [], {}
    for name, model in models.items():
        pred = kfold_predictions(model, x, y, folds=k, seed=seed)
        predicted[name] = pred.tolist()
        rows.append({"surrogate": name, "runs": len(y), "folds": k, **score(y, pred)})
    return Quality(k, rows, y.tolist(), predicted)


def pick_surrogate(requested: str, quality: Sequence[Mapping[str, Any]]) -> str:
    """``requested``, or for ``auto`` the surrogate of ``quality`` with the best
    cross-validated Spearman (ties: the first listed; an undefined one never wins)."""
    if requested != "auto":
        return requested
    scored = [
        (q["spearman"], -i, q["surrogate"])
        for i, q in enumerate(quality)
        if _defined(q["spearman"])
    ]
    if not scored:
        raise DataError("surrogate auto: no surrogate has a finite cross-validated Spearman")
    return str(max(scored)[2])


def weak_support(surrogate: str, quality: Sequence[Mapping[str, Any]]) -> str | None:
    """A warning when ``surrogate``, the one that chooses, ranks the runs no better than chance
    out of fold: its cross-validated Spearman in ``quality`` is undefined or not positive. None
    when it is positive, or when ``surrogate`` was not cross-validated."""
    row = next((q for q in quality if q["surrogate"] == surrogate), None)
    if row is None:
        return None
    rho = row["spearman"]
    if _defined(rho) and rho > 0:
        return None
    value = f"{rho:.2f}" if _defined(rho) else "undefined"
    return (
        f"the surrogate {surrogate!r} has a cross-validated rank correlation (Spearman) of "
        f"{value} on {row['runs']} runs: the chosen mixture is not better supported than a "
        "guess (more proxy runs, sweep.n_runs, or longer ones may help)"
    )


def choose_mixture(
    table: RunTable,
    space: SearchSpace,
    *,
    surrogate: Surrogate,
    label: str,
    seed: int,
    n_candidates: int,
    top_k: int,
) -> dict[str, Any]:
    """RegMix's choice with ``surrogate`` (recorded as ``label``) fitted on every run of
    ``table``: the record ``chosen_record`` describes."""
    opt = RegMixOptimizer(
        surrogate=surrogate,
        domains=space.domains,
        bounds=space.bounds,
        prior=space.prior,
        seed=search_seed(seed),
        n_candidates=n_candidates,
        top_k=top_k,
    )
    _observe(opt, table)
    return chosen_record(opt, table, label)


def chosen_record(opt: Optimizer, table: RunTable, label: str) -> dict[str, Any]:
    """The optimizer's recommendation: ``mixture`` (rounded), ``predicted`` and
    ``predicted_std`` (None when unknown), the ``surrogate`` (``label``) and the best run of
    ``table`` (``best_observed``: run_id and target)."""
    mixture, predicted, std = opt.recommend()
    y = table.target(TARGET_METRIC)
    return {
        "mixture": mixture.rounded(CHOSEN_DECIMALS),
        "predicted": float(predicted),
        "predicted_std": None if std is None else float(std),
        "surrogate": label,
        "best_observed": {"run_id": table.run_ids[int(np.argmin(y))], "target": float(y.min())},
    }


def bo_optimizer(
    sweep: RunTable,
    space: SearchSpace,
    *,
    surrogate: Surrogate,
    seed: int,
    index: int,
    low_fidelity: Surrogate | None = None,
    rounds: RunTable | None = None,
    n_candidates: int = BO_CANDIDATES,
) -> BOOptimizer:
    """BO (``surrogate``: an unfitted GP or ensemble of GPs) with every result so far, seeded
    for step ``index`` (``search_seed``), drawing ``n_candidates`` prior mixtures per
    proposal and for the final choice.

    Without ``low_fidelity`` it observes ``sweep``, which holds the rounds' runs too. With it
    (runs at a larger scale), ``low_fidelity`` is fitted on ``sweep`` as the GP's low-fidelity
    prior and the rounds' own table (``rounds``; None before any round finished) is observed.
    """
    if rounds is not None and low_fidelity is None:
        raise ConfigError(
            "the rounds' own runs are observed only with a low-fidelity prior (runs at a larger "
            "scale); without one the sweep's table holds every run"
        )
    prior = None
    observed: RunTable | None = sweep
    if low_fidelity is not None:
        prior = LowFidelityPrior(low_fidelity).fit(
            sweep.weights(space.domains), sweep.target(TARGET_METRIC), domains=space.domains
        )
        observed = rounds
    opt = BOOptimizer(
        surrogate=surrogate,
        low_fidelity=prior,
        domains=space.domains,
        bounds=space.bounds,
        prior=space.prior,
        seed=search_seed(seed, index),
        n_candidates=n_candidates,
    )
    if observed is not None:
        _observe(opt, observed)
    return opt


def propose_round(
    record: str | Path,
    *,
    round_index: int,
    batch: int,
    scale: Mapping[str, Any] | None,
    surrogate: str,
    optimizer: Callable[[], Optimizer],
) -> list[dict[str, float]]:
    """The ``batch`` mixtures (domain -> weight) BO round ``round_index`` trains.

    The first call asks ``optimizer()`` and writes them to ``record`` with the round, the
    ``scale`` its proxies train at (the bo_proxy settings; None: the sweep's) and the
    ``surrogate`` label; a later call (a rerun) returns the recorded mixtures, so the same runs
    are trained and found finished. A record proposed for another scale is a DataError: those
    mixtures must not be reused (a record without the scale key is the sweep's).
    """
    path = Path(record)
    expected = None if scale is None else dict(scale)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("bo_proxy") != expected:
            raise DataError(
                f"{path} holds proposals for rounds trained with search.bo_proxy = "
                f"{saved.get('bo_proxy')}, this config has {expected}: use another experiment "
                "folder, or delete the bo_round_*.json files to propose again"
            )
        return [dict(w) for w in saved["mixtures"]]
    weights = [dict(m) for m in optimizer().ask(batch)]
    write_json(
        path,
        {
            "round": round_index,
            "mixtures": weights,
            "bo_proxy": expected,
            "bo_surrogate": surrogate,
        },
    )
    return weights


def choose_at_bo_scale(
    sweep: RunTable,
    rounds: RunTable,
    space: SearchSpace,
    *,
    surrogate: Surrogate,
    low_fidelity: Surrogate,
    label: str,
    seed: int,
    index: int,
    n_candidates: int = BO_CANDIDATES,
) -> dict[str, Any]:
    """The mixture with the best posterior mean of the GP fitted on the rounds' runs (at the
    larger scale) with ``low_fidelity`` fitted on the sweep as its prior; the record
    ``chosen_record`` describes, ``label`` naming the surrogates."""
    opt = bo_optimizer(
        sweep,
        space,
        surrogate=surrogate,
        seed=seed,
        index=index,
        low_fidelity=low_fidelity,
        rounds=rounds,
        n_candidates=n_candidates,
    )
    return chosen_record(opt, rounds, label)


def finished_runs(
    path: str | Path | None, *, runs: str, statuses: str | Path, need: int = 1
) -> RunTable:
    """The run table at ``path`` (None: no run finished ok) if it holds ``need`` runs or more;
    else a DataError naming the ``runs`` ("proxy run") and the file of every run's status."""
    where = f"(see {Path(statuses).name})"
    if path is None:
        raise DataError(f"no {runs} finished ok: nothing to fit {where}")
    table = RunTable.read(path)
    if len(table) < need:
        raise DataError(f"only {len(table)} {runs}(s) finished ok, {need} needed {where}")
    return table


def _observe(opt: Optimizer, table: RunTable) -> None:
    rows = table.weights(opt.domains)
    mixtures = [Mixture.from_array(opt.domains, row, tolerance=WEIGHT_TOLERANCE) for row in rows]
    opt.observe(mixtures, table.target(TARGET_METRIC))


def _defined(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
