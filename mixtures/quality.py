"""Leak-free k-fold quality of a surrogate on one run table: Spearman, Pearson, MAE."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from mixtures.errors import DataError


def fit_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Spearman and Pearson correlation and mean absolute error of predictions."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    const = np.ptp(pred) == 0 or np.ptp(y) == 0
    return {
        "spearman": float("nan") if const else float(stats.spearmanr(y, pred).statistic),
        "pearson": float("nan") if const else float(stats.pearsonr(y, pred).statistic),
        "mae": float(np.mean(np.abs(y - pred))),
    }


def kfold_predictions(
    make: Callable[[], object], x: np.ndarray, y: np.ndarray, *, folds: int, seed: int
) -> np.ndarray:
    """Out-of-fold predictions: each run predicted by a model that never saw it.

    ``make`` returns a fresh unfitted estimator; anything it tunes internally sees only the
    training folds, so nothing is tuned or early-stopped on the held-out runs.
    """
    n = len(y)
    if n < folds or folds < 2:
        raise DataError(f"{n} runs cannot be split into {folds} folds (need >= folds >= 2)")
    order = np.random.default_rng(seed).permutation(n)
    pred = np.empty(n)
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        model = make().fit(x[train], y[train])  # type: ignore[attr-defined]
        pred[test] = model.predict(x[test])
    return pred
