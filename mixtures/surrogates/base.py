"""Shared pieces of the surrogates: input checks, feature maps and the target transform.

Every surrogate maps mixture weights ``X`` (n, d) to a predicted target ``y`` (n,). Two choices
recur in all of them and are measured in docs/decisions.md:

- ``features``: ``"sqrt"`` (default) feeds ``sqrt(w)``. Losses react to a domain's weight most
  strongly near 0 (going from 0 % to 1 % of a domain matters more than from 40 % to 41 %); the
  square root stretches that region, and Euclidean distance between square-rooted mixtures is
  the Hellinger distance between them, a natural metric on the simplex.
- ``log_target``: model ``log(y)`` when every training target is positive. Losses are positive
  and their differences scale with their level, so the log makes the noise closer to constant.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, overload

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from mixtures.errors import DataError

Features = Literal["x", "sqrt", "log", "x+sqrt"]
S = TypeVar("S", bound="Surrogate")
#: Added to weights before ``log`` features: RegMix stores weights with 3 decimals, so 1e-3 is the
#: smallest non-zero weight and zeros map to a finite value one step below it.
LOG_FEATURE_EPS = 1e-3


def check_X(X: object, *, n_features: int | None = None) -> np.ndarray:
    """``X`` as a finite float array (n, d); DataError naming the problem otherwise."""
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise DataError(f"X must be 2-d (n runs, d domains), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError("X has no rows")
    if not np.all(np.isfinite(arr)):
        row = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise DataError(f"X has a non-finite value in row {row}: {arr[row].tolist()}")
    if np.any(arr < 0):
        row = int(np.argwhere(arr < 0)[0][0])
        raise DataError(f"X has a negative weight in row {row}: {arr[row].tolist()}")
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(f"X has {arr.shape[1]} columns, the model was fit on {n_features}")
    return arr


def check_X_y(X: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``X`` (n, d) and ``y`` (n,): same length, finite."""
    arr = check_X(X)
    target = np.asarray(y, dtype=float).ravel()
    if target.shape[0] != arr.shape[0]:
        raise DataError(f"X has {arr.shape[0]} rows but y has {target.shape[0]} values")
    if not np.all(np.isfinite(target)):
        i = int(np.argwhere(~np.isfinite(target))[0][0])
        raise DataError(f"y has a non-finite value at position {i}: {target[i]}")
    return arr, target


def featurize(X: np.ndarray, features: Features) -> np.ndarray:
    """The feature map named by ``features`` applied to weights ``X`` (n, d)."""
    if features == "x":
        return X
    if features == "sqrt":
        return np.sqrt(X)
    if features == "log":
        return np.log(X + LOG_FEATURE_EPS)
    if features == "x+sqrt":
        return np.hstack([X, np.sqrt(X)])
    raise DataError(f"unknown features {features!r}; expected 'x', 'sqrt', 'log' or 'x+sqrt'")


class TargetTransform:
    """``log`` of a positive target (when asked and possible), undone on predictions.

    ``log_target`` "auto" takes the log when every training value is > 0, True insists (DataError
    on non-positive values), False never does.
    """

    def __init__(self, y: np.ndarray, log_target: bool | Literal["auto"]) -> None:
        positive = bool(np.all(y > 0))
        if log_target is True and not positive:
            raise DataError(f"log_target=True needs y > 0, got min(y) = {y.min():.6g}")
        self.log = positive if log_target == "auto" else bool(log_target)

    def forward(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.log else y

    def inverse(
        self, z: np.ndarray, std: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean (and std) back on the target scale; the std of ``exp`` by the delta method."""
        if not self.log:
            return z, std
        mean = np.exp(z)
        return mean, None if std is None else mean * std


class Surrogate(RegressorMixin, BaseEstimator):
    """Base class: scikit-learn estimator API plus ``predict(X, return_std=True)`` when known.

    Subclasses implement ``_fit(F, z)`` and ``_predict(F, return_std)`` on features ``F`` and the
    transformed target ``z``; this class validates inputs and applies the transforms. A model of
    other models (an ensemble) overrides ``fit`` and ``_predict_weights`` instead.
    """

    #: Whether ``predict(X, return_std=True)`` gives a model-based standard deviation.
    has_std: bool = False

    def fit(self, X: object, y: object) -> Surrogate:
        """Fit on weights ``X`` (n, d) and targets ``y`` (n,); returns ``self``."""
        arr, target = check_X_y(X, y)
        if arr.shape[0] < 2:
            raise DataError(f"need at least 2 runs to fit a surrogate, got {arr.shape[0]}")
        self.n_features_in_ = arr.shape[1]
        self.target_transform_ = TargetTransform(target, self.log_target)
        self._fit(self.feature_matrix(arr), self.target_transform_.forward(target))
        return self

    def feature_matrix(self, X: np.ndarray) -> np.ndarray:
        """The model's inputs for validated weights ``X`` (n, d): ``featurize(X, features)``
        (a GP with a low-fidelity prior adds a column)."""
        return featurize(X, self.features)

    @overload
    def predict(self, X: object, return_std: Literal[False] = False) -> np.ndarray: ...

    @overload
    def predict(self, X: object, return_std: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...

    def predict(
        self, X: object, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted target (n,); with ``return_std`` also its standard deviation (n,)."""
        if not hasattr(self, "n_features_in_"):
            raise DataError(f"{type(self).__name__} is not fitted yet: call fit(X, y) first")
        if return_std and not self.has_std:
            raise DataError(f"{type(self).__name__} has no predictive std (return_std=True)")
        arr = check_X(X, n_features=self.n_features_in_)
        mean, std = self._predict_weights(arr, return_std)
        if not return_std:
            return mean
        if std is None:
            raise RuntimeError(f"{type(self).__name__}._predict returned no std")
        return mean, std

    def _predict_weights(
        self, X: np.ndarray, return_std: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean (n,) and, when asked, std (n,) on the target scale for validated weights ``X``
        (n, d): ``_predict`` on the features, then the target transform undone."""
        mean, std = self._predict(self.feature_matrix(X), return_std)
        return self.target_transform_.inverse(mean, std if return_std else None)

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


def fresh(model: S, **params: Any) -> S:
    """An unfitted surrogate of ``model``'s class and parameters, with ``params`` replacing some.

    Built through ``__init__``, so its checks run again; parameter values are shared, not copied
    (a fitted low-fidelity prior is read, never changed, by the models that hold it).
    """
    return type(model)(**{**model.get_params(deep=False), **params})
