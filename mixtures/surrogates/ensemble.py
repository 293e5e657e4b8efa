"""Average of several surrogates' predictions on the target scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mixtures.errors import ConfigError
from mixtures.surrogates.base import Surrogate, check_X_y, fresh
from mixtures.surrogates.gp import GPSurrogate
from mixtures.surrogates.mixing_law import MixingLawSurrogate


@dataclass(kw_only=True, eq=False, repr=False)
class EnsembleSurrogate(Surrogate):
    """Weighted mean of the members' predictions.

    ``members`` are unfitted surrogates; each is fitted as a fresh copy with the ensemble's
    ``random_state``. None: the GP on square-rooted weights (best at ranking the runs' own
    scale) and the exp mixing law (smooth and monotone, best at transferring to other scales);
    see docs/decisions.md for the measurements. ``weighting="cv"`` weighs each member by the
    inverse of its mean squared error in ``folds``-fold cross-validation on the training runs
    (never on anything else); with fewer than ``2 * folds`` runs, or ``weighting="equal"``,
    the weights are equal. ``predict(X, return_std=True)`` returns
    ``sqrt(weighted member variance + weighted variance between members)``, members without a
    std contributing only through the spread.
    """

    has_std = True

    members: Sequence[Surrogate] | None = None
    weighting: Literal["cv", "equal"] = "cv"
    folds: int = 5
    random_state: int | None = None

    def member_models(self) -> tuple[Surrogate, ...]:
        """The unfitted members (the default pair when ``members`` is None)."""
        if self.members is None:
            return (GPSurrogate(), MixingLawSurrogate())
        return tuple(self.members)

    def fit(self, X: object, y: object) -> EnsembleSurrogate:
        members = self.member_models()
        if not members:
            raise ConfigError("an ensemble needs at least one member surrogate")
        arr, target = check_X_y(X, y)
        if self.weighting not in ("cv", "equal") or self.folds < 2:
            raise ConfigError(
                f"ensemble needs weighting 'cv' or 'equal' and folds >= 2, got "
                f"{self.weighting!r} and {self.folds}"
            )
        self.estimators_ = [self._fresh(m).fit(arr, target) for m in members]
        self.weights_ = self._weights(members, arr, target)
        self.n_features_in_ = arr.shape[1]  # last: a failed fit leaves the ensemble unfitted
        return self

    def _fresh(self, member: Surrogate) -> Surrogate:
        return fresh(member, random_state=self.random_state)

    def _weights(self, members: Sequence[Surrogate], X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Inverse out-of-fold MSE per member, normalized (equal when cv is off or too few runs)."""
        k = len(members)
        if self.weighting == "equal" or k == 1 or X.shape[0] < 2 * self.folds:
            return np.full(k, 1.0 / k)
        rng = np.random.default_rng(0 if self.random_state is None else self.random_state)
        folds = np.array_split(rng.permutation(X.shape[0]), self.folds)
        mse = np.zeros(k)
        for test in folds:
            train = np.setdiff1d(np.arange(X.shape[0]), test)
            for j, member in enumerate(members):
                pred = self._fresh(member).fit(X[train], y[train]).predict(X[test])
                mse[j] += float(np.sum((pred - y[test]) ** 2))
        inv = 1.0 / np.maximum(mse / X.shape[0], 1e-300)
        return inv / inv.sum()

    def _predict_weights(
        self, X: np.ndarray, return_std: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        means, variances = [], []
        for est in self.estimators_:
            if return_std and est.has_std:
                m, s = est.predict(X, return_std=True)
                variances.append(s**2)
            else:
                m = est.predict(X)
            means.append(m)
        w = self.weights_[:, None]  # (members, 1)
        stacked = np.stack(means)  # (members, n)
        mean = (w * stacked).sum(axis=0)
        if not return_std:
            return mean, None
        spread = (w * (stacked - mean) ** 2).sum(axis=0)
        has = [e.has_std for e in self.estimators_]
        within = np.zeros_like(mean)
        if variances:
            ws = self.weights_[has] / self.weights_[has].sum()
            within = (ws[:, None] * np.stack(variances)).sum(axis=0)
        return mean, np.sqrt(within + spread)
