"""Surrogate fit quality on RegMix's released runs: how well each surrogate ranks unseen runs.

``surrogate_fit``: each surrogate is trained on N of RegMix's 512 1M-parameter runs (random
subsets, ``repeats`` per N; N = 512 is one subset) and scored on the 256 unseen 1M runs and on
the 64 1B runs, which no choice inside a surrogate sees. Spearman says whether it ranks
mixtures as the runs do, which is what choosing a mixture needs.

``surrogate_fit_ci``: how precise such a figure is. Each surrogate is fitted on all 512 runs
and the test runs are resampled (bootstrap) for a 95 % interval of the Spearman: a difference
between two surrogates smaller than the interval is test-set noise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from benchmarks.pools import pool_targets, regmix_table
from benchmarks.suite import Case, Params, Table, fmt

TRAIN = ("train_mixture_1m.csv", "train_pile_loss_1m.csv")
TESTS = {
    "1M": ("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
    "1B": ("test_mixture_1B.csv", "test_pile_loss_1B.csv"),
}
ALL_SURROGATES = ["regmix_lgbm", "lightgbm", "ridge", "loglinear", "mixing_law", "gp", "ensemble"]


class FitParams(Params):
    """Spearman of each surrogate on unseen RegMix runs, by training-set size."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "surrogates": ["ridge", "lightgbm"],
        "train_sizes": [16, 32],
        "repeats": 2,
        "workers": 1,
    }

    surrogates: list[str] = ALL_SURROGATES
    """``make_surrogate`` names, one table row each."""
    train_sizes: list[int] = [16, 32, 64, 128, 256, 512]
    repeats: int = Field(10, ge=1)
    """Random training subsets per size."""
    seed: int = 0
    target: str = "pile_cc"
    """A RegMix validation loss by short name."""
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """Processes for the fits; the figures do not depend on it."""


class IntervalParams(Params):
    """Bootstrap 95 % intervals of the N=512 Spearman over the test runs."""

    smoke: ClassVar[Mapping[str, Any]] = {"surrogates": ["ridge"], "draws": 50}

    surrogates: list[str] = ["ensemble", "gp", "mixing_law"]
    draws: int = Field(2000, ge=10)
    """Bootstrap resamples of the test runs."""
    seed: int = 0
    target: str = "pile_cc"


def regmix_split(target: str) -> tuple[Any, str, dict[str, Any]]:
    """The 512 training runs, the target's metric name, and the two test tables."""
    train = regmix_table(*TRAIN)
    metric = pool_targets(train, [target])[target]
    return train, metric, {name: regmix_table(*files) for name, files in TESTS.items()}


def run_fit(p: FitParams, work: Path) -> list[dict[str, Any]]:
    from mixtures.evaluation import cross_validate

    train, metric, tests = regmix_split(p.target)
    d = train.domains
    test_sets = {k: (t.weights(d), t.target(metric)) for k, t in tests.items()}
    rows = []
    for name in p.surrogates:
        started = time.perf_counter()
        res = cross_validate(
            train.weights(),
            train.target(metric),
            surrogate=name,
            train_sizes=p.train_sizes,
            repeats=p.repeats,
            seed=p.seed,
            tests=test_sets,
            workers=p.workers,
        )
        wall = time.perf_counter() - started
        print(f"{name}: {wall:.0f} s", flush=True)
        for size in res["train_sizes"]:
            by = {s["test"]: s for s in res["summary"] if s["size"] == size}
            row: dict[str, Any] = {"surrogate": name, "size": size, "wall_seconds": wall}
            for test, s in by.items():
                for score in ("spearman", "pearson", "mae"):
                    row[f"{score}_{test}"] = s[f"{score}_mean"]
                row["fits"] = s["repeats"]
            rows.append(row)
    return rows


def fit_tables(rows: list[dict[str, Any]]) -> list[Table]:
    sizes = sorted({r["size"] for r in rows})
    names = list(dict.fromkeys(r["surrogate"] for r in rows))
    head = ["surrogate", *(f"N={n}" for n in sizes), "wall s"]
    cells = []
    for name in names:
        mine = {r["size"]: r for r in rows if r["surrogate"] == name}
        line = [name]
        for n in sizes:
            r = mine.get(n, {})
            line.append(" / ".join(_pct(r.get(f"spearman_{t}")) for t in TESTS))
        line.append(fmt(next(iter(mine.values()))["wall_seconds"], ".0f"))
        cells.append(line)
    return [(head, cells)]


def bootstrap(y: Any, p: Any, *, draws: int, seed: int) -> tuple[float, float]:
    """95 % percentile interval of the Spearman over ``draws`` resamples of the test runs."""
    import numpy as np
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        stats.append(spearmanr(y[i], p[i])[0])
    lo, hi = np.nanpercentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def run_interval(p: IntervalParams, work: Path) -> list[dict[str, Any]]:
    from scipy.stats import spearmanr

    from mixtures.surrogates import make_surrogate

    train, metric, tests = regmix_split(p.target)
    rows = []
    for name in p.surrogates:
        started = time.perf_counter()
        model = make_surrogate(name, random_state=0).fit(train.weights(), train.target(metric))
        for label, table in tests.items():
            y, pred = table.target(metric), model.predict(table.weights(train.domains))
            lo, hi = bootstrap(y, pred, draws=p.draws, seed=p.seed)
            rows.append(
                {
                    "surrogate": name,
                    "test": label,
                    "runs": len(y),
                    "spearman": float(spearmanr(y, pred)[0]),
                    "ci_low": lo,
                    "ci_high": hi,
                    "seconds": time.perf_counter() - started,
                }
            )
    return rows


def interval_tables(rows: list[dict[str, Any]]) -> list[Table]:
    tests = list(dict.fromkeys(r["test"] for r in rows))
    runs = {r["test"]: r["runs"] for r in rows}
    head = ["surrogate", *(f"{t} test ({runs[t]} runs)" for t in tests)]
    cells = []
    for name in dict.fromkeys(r["surrogate"] for r in rows):
        by = {r["test"]: r for r in rows if r["surrogate"] == name}
        cells.append(
            [name]
            + [
                f"{_pct(by[t]['spearman'])} ({_pct(by[t]['ci_low'])}-{_pct(by[t]['ci_high'])})"
                for t in tests
            ]
        )
    return [(head, cells)]


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


CASES = [
    Case(name="surrogate_fit", params=FitParams, run=run_fit, tables=fit_tables),
    Case(name="surrogate_fit_ci", params=IntervalParams, run=run_interval, tables=interval_tables),
]
