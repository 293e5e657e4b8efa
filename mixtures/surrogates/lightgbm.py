"""LightGBM regressors: settings that split from 16 runs up, and RegMix's released settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from lightgbm import LGBMRegressor

from mixtures.surrogates.base import Features, Surrogate

#: RegMix's released settings (sail-sg/regmix, regression_fitting/regression.ipynb): gbdt,
#: 1000 rounds at learning rate 0.01, LightGBM's other defaults. RegMix also stopped early on its
#: test set; that is not reproduced (no early stopping on test runs). LightGBM's default
#: ``min_child_samples=20`` means that with fewer than 40 runs no split is ever made.
REGMIX_PARAMS: dict[str, Any] = {
    "boosting_type": "gbdt",
    "objective": "regression",
    "n_estimators": 1000,
    "learning_rate": 1e-2,
}

#: Small-data settings: leaves may hold 3 runs so that 16 runs can split, shallow trees and
#: row/column subsampling against overfitting, 300 rounds at 0.03.
SMALL_DATA_PARAMS: dict[str, Any] = {
    "boosting_type": "gbdt",
    "objective": "regression",
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 8,
    "min_child_samples": 3,
    "min_child_weight": 1e-6,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


@dataclass(kw_only=True, eq=False, repr=False)
class LightGBMSurrogate(Surrogate):
    """``lightgbm.LGBMRegressor`` with ``preset`` settings, overridden by ``params``.

    ``preset="small"`` (default) works from 16 runs; ``preset="regmix"`` reproduces RegMix's
    released settings on raw weights and the raw target (its baseline).
    """

    preset: Literal["small", "regmix"] = "small"
    params: dict[str, Any] | None = None
    features: Features = "x"
    log_target: bool | Literal["auto"] = "auto"
    random_state: int | None = None

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        base = REGMIX_PARAMS if self.preset == "regmix" else SMALL_DATA_PARAMS
        settings = {**base, **(self.params or {})}
        # One thread: deterministic and fair on a shared 2-core machine; verbosity off.
        seed = 42 if self.random_state is None else int(self.random_state)
        self.model_ = LGBMRegressor(**settings, random_state=seed, n_jobs=1, verbosity=-1)
        self.model_.fit(F, z)

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, None]:
        return np.asarray(self.model_.predict(F), dtype=float), None
