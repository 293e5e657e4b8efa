"""How well a surrogate predicts runs it was not fitted on: Spearman, Pearson and MAE.

``score`` is the one scorer: the pipeline's k-fold quality (``kfold_predictions``), the CLI's
``cross_validate`` and the benchmarks all report its numbers, with None for a correlation that
is undefined (constant predictions or targets), so every output is plain JSON.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from mixtures.errors import ConfigError, DataError
from mixtures.evaluation.common import check_table, run_jobs
from mixtures.surrogates import Surrogate, make_surrogate
from mixtures.surrogates.base import fresh

#: Fewest held-out runs a correlation is computed on.
MIN_TEST_RUNS = 3
#: The names ``score`` returns, in order.
SCORES = ("spearman", "pearson", "mae")


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """Spearman and Pearson correlation (None when either side is constant, where they are
    undefined) and mean absolute error of predictions ``y_pred`` of ``y_true``."""
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    constant = bool(np.ptp(y_pred) == 0.0 or np.ptp(y_true) == 0.0)
    return {
        "spearman": None if constant else float(spearmanr(y_true, y_pred)[0]),
        "pearson": None if constant else float(pearsonr(y_true, y_pred)[0]),
        "mae": float(np.mean(np.abs(y_true - y_pred))),
    }


def kfold_predictions(
    model: Surrogate, X: np.ndarray, y: np.ndarray, *, folds: int, seed: int
) -> np.ndarray:
    """Out-of-fold predictions (n,): each run predicted by a fresh copy of the unfitted ``model``
    that never saw it. Anything the model tunes internally sees only the training folds, so
    nothing is tuned or early-stopped on the held-out runs."""
    n = len(y)
    if n < folds or folds < 2:
        raise DataError(f"{n} runs cannot be split into {folds} folds (need >= folds >= 2)")
    order = np.random.default_rng(seed).permutation(n)
    pred = np.empty(n)
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        pred[test] = fresh(model).fit(X[train], y[train]).predict(X[test])
    return pred


def cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    *,
    surrogate: str,
    train_sizes: Sequence[int],
    repeats: int,
    seed: int,
    tests: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    surrogate_params: Mapping[str, Any] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Scores of ``surrogate`` trained on ``repeats`` random subsets of each size.

    Without ``tests`` each subset is scored on the runs of ``X`` it does not contain (test
    "holdout"); with ``tests`` (name -> (X, y)) on each of those instead. A size equal to the
    number of runs has one distinct subset, so it is fitted once. Returns ``{"rows": [...],
    "summary": [...], ...}``; a correlation is None when it is undefined (``score``), e.g. the
    constant predictions of LightGBM with too few runs to split. ``workers`` > 1 fits in that
    many processes; the results are the same as with one.
    """
    X, y = check_table(X, y, "runs")
    n = X.shape[0]
    sizes = _check_sizes(train_sizes, n=n, holdout=not tests)
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    test_sets = {k: check_table(*v, f"test {k!r}") for k, v in (tests or {}).items()}
    params = dict(surrogate_params or {})
    make_surrogate(surrogate, **params)  # unknown name or bad params fail before any work
    jobs = []
    children = np.random.SeedSequence(seed).spawn(len(sizes))
    for size, child in zip(sizes, children, strict=True):
        rng = np.random.default_rng(child)
        for rep in range(1 if size == n else repeats):
            idx = np.sort(rng.choice(n, size=size, replace=False))
            jobs.append({"size": size, "repeat": rep, "idx": idx})
    shared = dict(X=X, y=y, surrogate=surrogate, params=params, seed=seed, tests=test_sets)
    rows = [row for part in run_jobs(_cv_job, jobs, shared, workers) for row in part]
    return {
        "surrogate": surrogate,
        "params": params,
        "seed": seed,
        "runs": n,
        "train_sizes": sizes,
        "repeats": repeats,
        "rows": rows,
        "summary": summarize_cv(rows),
    }


def summarize_cv(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std of each score per (size, test); ``constant`` counts undefined correlations."""
    out = []
    keys = sorted({(r["size"], r["test"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for size, test in keys:
        part = [r for r in rows if r["size"] == size and r["test"] == test]
        entry: dict[str, Any] = {"size": size, "test": test, "repeats": len(part)}
        for metric in SCORES:
            vals = np.array([r[metric] for r in part if r[metric] is not None], dtype=float)
            entry[f"{metric}_mean"] = float(vals.mean()) if vals.size else None
            entry[f"{metric}_std"] = float(vals.std()) if vals.size else None
        entry["constant"] = sum(r["spearman"] is None for r in part)
        entry["fit_seconds_mean"] = float(np.mean([r["fit_seconds"] for r in part]))
        out.append(entry)
    return out


def _cv_job(
    *,
    X: np.ndarray,
    y: np.ndarray,
    surrogate: str,
    params: dict[str, Any],
    seed: int,
    tests: Mapping[str, tuple[np.ndarray, np.ndarray]],
    size: int,
    repeat: int,
    idx: np.ndarray,
) -> list[dict[str, Any]]:
    """One fit of ``cross_validate`` and its scores on every test set."""
    started = time.perf_counter()
    model = make_surrogate(surrogate, random_state=seed + repeat, **params)
    model.fit(X[idx], y[idx])
    fit_seconds = time.perf_counter() - started
    targets = tests or {"holdout": (np.delete(X, idx, 0), np.delete(y, idx))}
    return [
        {
            "size": size,
            "repeat": repeat,
            "test": name,
            **score(yt, model.predict(Xt)),
            "fit_seconds": fit_seconds,
        }
        for name, (Xt, yt) in targets.items()
    ]


def _check_sizes(sizes: Sequence[int], *, n: int, holdout: bool) -> list[int]:
    out = sorted({int(s) for s in sizes})
    if not out:
        raise ConfigError("train_sizes is empty")
    top = n - MIN_TEST_RUNS if holdout else n
    bad = [s for s in out if not 2 <= s <= top]
    if bad:
        where = f"{n} runs minus {MIN_TEST_RUNS} held out" if holdout else f"{n} runs"
        raise ConfigError(f"train sizes {bad} out of range: need 2 <= size <= {top} ({where})")
    return out
