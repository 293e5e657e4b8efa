"""Runs at a cheaper fidelity (smaller models, fewer tokens) as one more input of the GP.

RegMix's premise, and ADMIRE-BayesOpt's multi-fidelity search: how mixtures rank at a small scale
carries over to a larger one. ``LowFidelityPrior`` fits a surrogate on the cheap runs once;
``transform(X)`` is its prediction for mixtures ``X`` (on the log scale when the cheap predictions
are positive), mapped so that its predictions on the cheap runs themselves span [0, 1]. A GP given
one (``GPSurrogate(low_fidelity=...)``) takes that value as one more input, with a linear kernel
of its own beside the mixture kernel: the runs at the target scale decide how far the cheap ranking
is followed (a slope near 0: not at all). The BO optimizer also starts from it: its first runs are
the candidates the cheap surrogate ranks best, not random draws.

The cheap runs' metric must improve in the same direction as the target (both losses, or both
accuracies).

A GP's kernel fitted on earlier runs is the other kind of transfer: ``gp.TransferredKernel``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mixtures.errors import ConfigError, DataError
from mixtures.surrogates.base import Surrogate, check_X, check_X_y, fresh


def check_domains(
    what: str, fitted: int, fitted_names: tuple[str, ...] | None, domains: Sequence[str] | int
) -> None:
    """ConfigError unless ``domains`` (names, or their number) are the ``fitted`` ones, in the
    same order when both sides have names."""
    n = domains if isinstance(domains, int) else len(domains)
    if fitted != n:
        raise ConfigError(f"{what} was fitted on {fitted} domains, the model has {n}")
    if fitted_names is not None and not isinstance(domains, int) and tuple(domains) != fitted_names:
        raise ConfigError(
            f"{what} was fitted on domains {list(fitted_names)}, the model is over "
            f"{list(domains)}: map them (mixtures.runtable.domain_map) in that order"
        )


def check_low_fidelity(prior: object, domains: Sequence[str] | int) -> LowFidelityPrior:
    """``prior`` if it is a fitted ``LowFidelityPrior`` usable over ``domains``; else
    ConfigError naming the problem."""
    if not isinstance(prior, LowFidelityPrior):
        raise ConfigError(f"low_fidelity must be a LowFidelityPrior, got {type(prior).__name__}")
    prior.check_usable(domains)
    return prior


class LowFidelityPrior:
    """An unfitted surrogate, fitted on cheap runs by ``fit``; see the module doc.

    ``surrogate`` is not changed: ``fit`` fits a fresh copy of it (``model_``). Picklable, so one
    fitted prior can be shared by the repeats of a replay in worker processes.
    """

    def __init__(self, surrogate: Surrogate) -> None:
        if not isinstance(surrogate, Surrogate):
            raise ConfigError(
                f"a low-fidelity prior needs a surrogate object (e.g. make_surrogate('ridge')), "
                f"got {type(surrogate).__name__}"
            )
        self.surrogate = surrogate

    def fit(self, X: object, y: object, domains: Sequence[str] | None = None) -> LowFidelityPrior:
        """Fit the surrogate on the cheap runs' weights ``X`` (n, d) and values ``y`` (n,);
        ``domains`` names the d columns, so that an optimizer can check its own order against
        them. Nothing is kept when the fit fails."""
        arr, target = check_X_y(X, y)
        if domains is not None and len(domains) != arr.shape[1]:
            raise DataError(f"{len(domains)} domain names for {arr.shape[1]} weight columns")
        model = fresh(self.surrogate).fit(arr, target)
        pred = np.asarray(model.predict(arr), dtype=float)
        log = bool(np.all(pred > 0))
        z = np.log(pred) if log else pred
        if not z.max() > z.min():
            raise DataError(
                f"the low-fidelity surrogate ({type(self.surrogate).__name__}) predicts the same "
                f"value for all {arr.shape[0]} cheap runs: they carry no ranking to transfer"
            )
        self.model_, self.log_ = model, log
        self.low_, self.high_ = float(z.min()), float(z.max())
        self.n_features_in_ = arr.shape[1]
        self.domains_ = None if domains is None else tuple(domains)
        return self

    def check_usable(self, domains: Sequence[str] | int) -> None:
        """ConfigError unless this prior is fitted, over ``domains`` (names, in this order, when
        the prior knows its names; else their number)."""
        if not hasattr(self, "model_"):
            raise ConfigError("low_fidelity is not fitted: call fit(X, y) on the cheap runs")
        check_domains("low_fidelity", self.n_features_in_, self.domains_, domains)

    def transform(self, X: object) -> np.ndarray:
        """The cheap surrogate's prediction for ``X`` (n, d), scaled as in the module doc (n,)."""
        if not hasattr(self, "model_"):
            raise DataError("LowFidelityPrior is not fitted yet: call fit(X, y) on the cheap runs")
        arr = check_X(X, n_features=self.n_features_in_)
        pred = np.asarray(self.model_.predict(arr), dtype=float)
        if self.log_:
            if np.any(pred <= 0):
                raise DataError(
                    "the low-fidelity surrogate predicts a non-positive value for a mixture, "
                    "but its predictions on the cheap runs were positive (log scale)"
                )
            pred = np.log(pred)
        return (pred - self.low_) / (self.high_ - self.low_)
