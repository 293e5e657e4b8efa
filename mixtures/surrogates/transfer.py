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

``TransferredKernel`` carries another kind of knowledge from earlier runs: not their values but
the GP's kernel (its scales and per-domain length scales) and noise, fitted once on many earlier
runs over the same domains (an earlier swarm, or the same swarm's other evaluations). A GP given
one (``GPSurrogate(kernel_from=...)``) keeps those hyper-parameters and only conditions on its
own runs, so the few runs at the start of a search are not also spent learning which domains
matter (benchmarks/bo_oracle.py, docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mixtures.errors import ConfigError, DataError
from mixtures.surrogates.base import check_X, check_X_y


def _check_domains(
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
    """A surrogate (``make_surrogate`` name and params) fitted on cheap runs; see the module doc.

    Picklable, so one fitted prior can be shared by the repeats of a replay in worker processes.
    """

    def __init__(
        self,
        surrogate: str = "ensemble",
        surrogate_params: dict[str, Any] | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.surrogate = surrogate
        self.surrogate_params = dict(surrogate_params or {})
        self.random_state = random_state

    def fit(self, X: object, y: object, domains: Sequence[str] | None = None) -> LowFidelityPrior:
        """Fit the surrogate on the cheap runs' weights ``X`` (n, d) and values ``y`` (n,);
        ``domains`` names the d columns, so that an optimizer can check its own order against
        them. Nothing is kept when the fit fails."""
        from mixtures.surrogates import make_surrogate  # the registry imports the GP module

        arr, target = check_X_y(X, y)
        if domains is not None and len(domains) != arr.shape[1]:
            raise DataError(f"{len(domains)} domain names for {arr.shape[1]} weight columns")
        model = make_surrogate(
            self.surrogate, random_state=self.random_state, **self.surrogate_params
        ).fit(arr, target)
        pred = np.asarray(model.predict(arr), dtype=float)
        log = bool(np.all(pred > 0))
        z = np.log(pred) if log else pred
        if not z.max() > z.min():
            raise DataError(
                f"the low-fidelity surrogate {self.surrogate!r} predicts the same value for all "
                f"{arr.shape[0]} cheap runs: they carry no ranking to transfer"
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
        _check_domains("low_fidelity", self.n_features_in_, self.domains_, domains)

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


#: State-dict prefixes a transferred kernel carries: the kernel and the likelihood (noise). The
#: constant mean and the outcome standardization belong to the runs a GP is fitted on.
KERNEL_STATE_PREFIXES = ("covar_module.", "likelihood.")


def check_kernel_from(
    kernel_from: object, kernel: str, features: str, domains: Sequence[str] | int
) -> TransferredKernel:
    """``kernel_from`` if it is a fitted ``TransferredKernel`` for a GP with this ``kernel`` and
    ``features`` over ``domains``; else ConfigError naming the problem."""
    if not isinstance(kernel_from, TransferredKernel):
        raise ConfigError(
            f"kernel_from must be a TransferredKernel, got {type(kernel_from).__name__}"
        )
    kernel_from.check_usable(kernel, features, domains)
    return kernel_from


class TransferredKernel:
    """A GP preset's kernel and noise fitted on earlier runs, for GPs fitted on few runs.

    ``fit(X, y)`` fits ``make_surrogate(surrogate)`` (a single GP without a low-fidelity prior)
    on the earlier runs and keeps the hyper-parameters of its kernel and likelihood. ``y`` must
    be on the scale the later GP models: the same direction as its target (BO minimizes, so a
    score to maximize is passed negated). Picklable, like ``LowFidelityPrior``.
    """

    def __init__(self, surrogate: str = "gp_hybrid", random_state: int | None = 0) -> None:
        self.surrogate = surrogate
        self.random_state = random_state

    def fit(self, X: object, y: object, domains: Sequence[str] | None = None) -> TransferredKernel:
        """Fit on earlier runs' weights ``X`` (n, d) and values ``y`` (n,); ``domains`` names
        the d columns. Nothing is kept when the fit fails."""
        from mixtures.surrogates import make_surrogate  # the registry imports the GP module
        from mixtures.surrogates.gp import GPSurrogate

        arr, target = check_X_y(X, y)
        if domains is not None and len(domains) != arr.shape[1]:
            raise DataError(f"{len(domains)} domain names for {arr.shape[1]} weight columns")
        model = make_surrogate(self.surrogate, random_state=self.random_state)
        if not isinstance(model, GPSurrogate) or model.low_fidelity is not None:
            raise ConfigError(
                f"a transferred kernel comes from a single GP surrogate (e.g. 'gp_hybrid'), "
                f"got {self.surrogate!r}"
            )
        model.fit(arr, target)
        state = model.model_.state_dict()
        self.state_ = {
            k: v.detach().clone() for k, v in state.items() if k.startswith(KERNEL_STATE_PREFIXES)
        }
        self.kernel_, self.features_ = model.kernel, model.features
        self.n_features_in_ = arr.shape[1]
        self.domains_ = None if domains is None else tuple(domains)
        return self

    def check_usable(self, kernel: str, features: str, domains: Sequence[str] | int) -> None:
        """ConfigError unless fitted, for a GP with this ``kernel`` and ``features``, over
        ``domains`` (names in this order when both sides have them; else their number)."""
        if not hasattr(self, "state_"):
            raise ConfigError("kernel_from is not fitted: call fit(X, y) on the earlier runs")
        if (kernel, features) != (self.kernel_, self.features_):
            raise ConfigError(
                f"kernel_from holds a {self.kernel_!r} kernel on features {self.features_!r} "
                f"(surrogate {self.surrogate!r}); this GP has {kernel!r} on {features!r}: use "
                "the same surrogate for both"
            )
        _check_domains("kernel_from", self.n_features_in_, self.domains_, domains)
