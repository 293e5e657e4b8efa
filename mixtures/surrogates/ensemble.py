"""Average of several surrogates' predictions on the target scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from mixtures.errors import ConfigError, DataError
from mixtures.surrogates.base import Surrogate, check_X, check_X_y


class EnsembleSurrogate(Surrogate):
    """Weighted mean of the members' predictions (each a ``make_surrogate`` name, defaults).

    The default pairs the GP on square-rooted weights (best at ranking the runs' own scale) with
    the exp mixing law (smooth and monotone, best at transferring to other scales); see
    docs/decisions.md for the measurements. ``weighting="cv"`` weighs each member by the
    inverse of its mean squared error in ``folds``-fold cross-validation on the training runs
    (never on anything else); with fewer than ``2 * folds`` runs, or ``weighting="equal"``,
    the weights are equal. ``predict(X, return_std=True)`` returns
    ``sqrt(weighted member variance + weighted variance between members)``, members without a
    std contributing only through the spread.
    """

    has_std = True

    def __init__(
        self,
        *,
        members: Sequence[str] = ("gp", "mixing_law"),
        weighting: Literal["cv", "equal"] = "cv",
        folds: int = 5,
        random_state: int | None = None,
    ) -> None:
        self.members = members
        self.weighting = weighting
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: object, y: object) -> EnsembleSurrogate:
        from mixtures.surrogates import make_surrogate  # the registry imports this module

        if not self.members:
            raise ConfigError("an ensemble needs at least one member surrogate")
        arr, target = check_X_y(X, y)
        self.n_features_in_ = arr.shape[1]
        if self.weighting not in ("cv", "equal") or self.folds < 2:
            raise ConfigError(
                f"ensemble needs weighting 'cv' or 'equal' and folds >= 2, got "
                f"{self.weighting!r} and {self.folds}"
            )
        self.estimators_ = [
            make_surrogate(name, random_state=self.random_state).fit(arr, target)
            for name in self.members
        ]
        self.weights_ = self._weights(arr, target)
        return self

    def _weights(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Inverse out-of-fold MSE per member, normalized (equal when cv is off or too few runs)."""
        from mixtures.surrogates import make_surrogate

        k = len(self.members)
        if self.weighting == "equal" or k == 1 or X.shape[0] < 2 * self.folds:
            return np.full(k, 1.0 / k)
        rng = np.random.default_rng(0 if self.random_state is None else self.random_state)
        folds = np.array_split(rng.permutation(X.shape[0]), self.folds)
        mse = np.zeros(k)
        for test in folds:
            train = np.setdiff1d(np.arange(X.shape[0]), test)
            for j, name in enumerate(self.members):
                model = make_surrogate(name, random_state=self.random_state)
                pred = model.fit(X[train], y[train]).predict(X[test])
                mse[j] += float(np.sum((pred - y[test]) ** 2))
        inv = 1.0 / np.maximum(mse / X.shape[0], 1e-300)
        return inv / inv.sum()

    def predict(
        self, X: object, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "estimators_"):
            raise DataError("EnsembleSurrogate is not fitted yet: call fit(X, y) first")
        arr = check_X(X, n_features=self.n_features_in_)
        means, variances = [], []
        for est in self.estimators_:
            if return_std and getattr(est, "has_std", False):
                m, s = est.predict(arr, return_std=True)
                variances.append(s**2)
            else:
                m = est.predict(arr)
            means.append(m)
        w = self.weights_[:, None]  # (members, 1)
        stacked = np.stack(means)  # (members, n)
        mean = (w * stacked).sum(axis=0)
        if not return_std:
            return mean
        spread = (w * (stacked - mean) ** 2).sum(axis=0)
        has = [getattr(e, "has_std", False) for e in self.estimators_]
        within = np.zeros_like(mean)
        if variances:
            ws = self.weights_[has] / self.weights_[has].sum()
            within = (ws[:, None] * np.stack(variances)).sum(axis=0)
        return mean, np.sqrt(within + spread)
