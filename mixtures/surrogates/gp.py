"""Gaussian process (BoTorch ``SingleTaskGP``, float64) on square-rooted weights.

On ``sqrt(w)`` the RBF kernel is a function of the Hellinger distance between mixtures (see
``base``), with one length scale per domain (ARD). BoTorch's default priors (length scales
log-normal, scaled with the dimension) keep 17-64 length scales sensible from 16 runs up.

``kernel="linear+rbf"`` adds a scaled linear kernel to a scaled RBF-ARD: a Bayesian linear
regression in the weights (one shared prior variance, so it is identified from a handful of runs,
fewer than the domains) plus a smooth non-linear residual. Mixture losses are close to linear
(or log-linear) in the weights over the range a sweep covers, so with few runs this prior
extrapolates "more of domain j helps" where an RBF alone reverts to the mean.

``kernel="hybrid"`` (features ``x+sqrt``) sums a linear kernel on the weights, a linear kernel on
their square roots and an RBF-ARD on the square roots; ``kernel="hybrid_linear"`` leaves out the
RBF: a Bayesian linear regression in w and sqrt(w), the BO default (``names``).

``low_fidelity`` (a fitted ``LowFidelityPrior``, see ``transfer``) adds the cheap runs'
surrogate's prediction as one more input, with a scaled linear kernel of its own added to the
mixture kernel.

``kernel_from`` (a fitted ``TransferredKernel``, below) fixes the kernel's and the
noise's hyper-parameters to those fitted on earlier runs: the GP only conditions on its data
(standardized as usual), with no marginal-likelihood fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from botorch.exceptions.errors import ModelFittingError
from botorch.exceptions.warnings import InputDataWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Standardize
from botorch.models.utils.gpytorch_modules import get_covar_module_with_dim_scaled_prior
from gpytorch.kernels import Kernel, LinearKernel, MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood

from mixtures.errors import ConfigError, DataError
from mixtures.surrogates.base import Features, Surrogate, check_X_y, featurize, fresh
from mixtures.surrogates.transfer import LowFidelityPrior, check_domains, check_low_fidelity

#: The kernels ``GPSurrogate`` accepts (see the module doc and ``covar_module``).
KernelName = Literal["rbf", "matern", "linear+rbf", "hybrid", "hybrid_linear"]
KERNELS: tuple[KernelName, ...] = get_args(KernelName)
#: Kernels over features 'x+sqrt' (w in the first half of the columns, sqrt(w) in the second).
X_SQRT_KERNELS: tuple[KernelName, ...] = ("hybrid", "hybrid_linear")
#: State-dict prefixes a transferred kernel carries: the kernel and the likelihood (noise). The
#: constant mean and the outcome standardization belong to the runs a GP is fitted on.
KERNEL_STATE_PREFIXES = ("covar_module.", "likelihood.")


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave as is), then restore."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(kw_only=True, eq=False, repr=False)
class GPSurrogate(Surrogate):
    """Exact GP regression; ``predict(X, return_std=True)`` gives the latent posterior std.

    ``kernel``: one of ``KERNELS``: "rbf" (BoTorch's default ARD RBF with dimension-scaled
    priors), "matern" (Matern 5/2, ARD), "linear+rbf" (scaled linear + scaled RBF-ARD, see the
    module doc), "hybrid" (linear on w and on sqrt(w) plus RBF-ARD on sqrt(w)) or
    "hybrid_linear" (the hybrid without its RBF); the hybrids need features "x+sqrt".
    ``max_iter`` caps the L-BFGS iterations of the marginal-likelihood fit (100 reaches the
    default fit's ranking quality at a fifth of its time, docs/decisions.md).
    ``threads`` sets torch's intra-op threads during fit and predict, restored afterwards: the
    matrices are small, and several threads on a shared 2-core machine made fits 5-10x slower.
    ``random_state`` seeds the (rare) random restarts of the hyper-parameter
    fit inside a forked torch RNG, so global torch state is untouched.
    ``low_fidelity``: a fitted ``LowFidelityPrior`` over the same domains, or None (module doc).
    ``kernel_from``: a fitted ``TransferredKernel`` of the same kernel and features, or None.
    """

    has_std = True

    kernel: KernelName = "rbf"
    max_iter: int = 100
    threads: int | None = 1
    features: Features = "sqrt"
    log_target: bool | Literal["auto"] = "auto"
    low_fidelity: LowFidelityPrior | None = None
    kernel_from: TransferredKernel | None = None
    random_state: int | None = None

    def __post_init__(self) -> None:
        covar_module(self.kernel, 2)  # an unknown kernel fails here, not at fit
        if self.kernel in X_SQRT_KERNELS and self.features != "x+sqrt":
            raise ConfigError(
                f"the {self.kernel} GP kernel needs features 'x+sqrt' (w and sqrt(w)), "
                f"got {self.features!r}"
            )
        if self.kernel_from is not None and self.low_fidelity is not None:
            raise ConfigError(
                "a GP takes a low-fidelity prior or a transferred kernel, not both: the prior "
                "adds an input the transferred kernel has no hyper-parameters for"
            )

    def feature_matrix(self, X: np.ndarray) -> np.ndarray:
        """``featurize(X, features)``, plus the low-fidelity prediction as the last column."""
        F = featurize(X, self.features)
        if self.low_fidelity is None:
            return F
        prior = check_low_fidelity(self.low_fidelity, X.shape[1])
        return np.hstack([F, prior.transform(X)[:, None]])

    def covar(self, d: int) -> Kernel | None:
        """The covariance module over the ``d`` feature columns (None: BoTorch's default). With
        ``low_fidelity`` the mixture kernel covers the first ``d - 1`` columns and a scaled linear
        kernel the last. Subclasses override this to try other kernels."""
        if self.low_fidelity is None:
            return covar_module(self.kernel, d)
        return covar_module(self.kernel, d - 1, dims=tuple(range(d - 1))) + ScaleKernel(
            LinearKernel(active_dims=(d - 1,))
        )

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        train_x = torch.as_tensor(F, dtype=torch.float64)  # (n, d)
        train_y = torch.as_tensor(z, dtype=torch.float64).unsqueeze(-1)  # (n, 1)
        covar = self.covar(F.shape[1])
        with torch.random.fork_rng(), torch_threads(self.threads), warnings.catch_warnings():
            if self.low_fidelity is not None:
                # the cheap prediction spans [0, 1] on the cheap runs only, by design
                warnings.simplefilter("ignore", InputDataWarning)
            torch.manual_seed(0 if self.random_state is None else int(self.random_state))
            model = SingleTaskGP(
                train_x, train_y, covar_module=covar, outcome_transform=Standardize(m=1)
            )
            if self.kernel_from is not None:
                self._load_kernel(model)
            else:
                mll = ExactMarginalLogLikelihood(model.likelihood, model)
                self.fit_failed_ = False
                try:
                    fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": self.max_iter}})
                except ModelFittingError:
                    # Every restart of the hyperparameter fit failed (an ill-conditioned kernel
                    # matrix, e.g. a low-fidelity feature that nearly interpolates the runs):
                    # the GP keeps its prior's hyperparameters, still a valid posterior.
                    self.fit_failed_ = True
                    warnings.warn(
                        "GP hyperparameter fit failed; using the prior's hyperparameters",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    model = SingleTaskGP(
                        train_x,
                        train_y,
                        covar_module=self.covar(F.shape[1]),
                        outcome_transform=Standardize(m=1),
                    )
        model.eval()
        self.model_ = model

    def _load_kernel(self, model: SingleTaskGP) -> None:
        """Set ``model``'s kernel and noise to ``kernel_from``'s, checked to fit this GP (a state
        of the same kernel and features has exactly the model's keys: loading is strict)."""
        kf = check_kernel_from(self.kernel_from, self.kernel, self.features, self.n_features_in_)
        model.load_state_dict({**model.state_dict(), **kf.state_})

    def kernel_state(self) -> dict[str, torch.Tensor]:
        """Copies of the fitted kernel's and noise's parameters (``KERNEL_STATE_PREFIXES``)."""
        state = self.model_.state_dict()
        return {
            k: v.detach().clone() for k, v in state.items() if k.startswith(KERNEL_STATE_PREFIXES)
        }

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        x = torch.as_tensor(F, dtype=torch.float64)
        with torch.no_grad(), torch_threads(self.threads):
            post = self.model_.posterior(x)
            mean = post.mean.squeeze(-1).numpy().copy()
            std = None
            if return_std:
                std = post.variance.clamp_min(0).sqrt().squeeze(-1).numpy().copy()
        return mean, std


def covar_module(kernel: KernelName, d: int, dims: tuple[int, ...] | None = None) -> Kernel | None:
    """The covariance module for ``kernel`` over ``d`` features (None: BoTorch's default);
    ``dims``: the input columns those ``d`` features are (default: all, 0..d-1). Public so that
    subclasses build the same kernels."""
    if dims is not None and len(dims) != d:
        raise ConfigError(f"covar_module: {len(dims)} dims given for {d} features")
    if kernel == "rbf":
        if dims is None:
            return None
        return get_covar_module_with_dim_scaled_prior(ard_num_dims=d, active_dims=dims)
    if kernel == "matern":
        return ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=d, active_dims=dims))
    if kernel == "linear+rbf":
        return ScaleKernel(LinearKernel(active_dims=dims)) + ScaleKernel(
            get_covar_module_with_dim_scaled_prior(ard_num_dims=d, active_dims=dims)
        )
    if kernel in X_SQRT_KERNELS:
        k = d // 2  # features 'x+sqrt' (GPSurrogate insists): w in the first k, sqrt(w) after
        cols = tuple(range(d)) if dims is None else dims
        raw, root = cols[:k], cols[k:]
        linear = ScaleKernel(LinearKernel(active_dims=raw)) + ScaleKernel(
            LinearKernel(active_dims=root)
        )
        if kernel == "hybrid_linear":  # hybrid without its RBF: Bayesian linear in w, sqrt(w)
            return linear
        # gpytorch flattens sums: the same three parts, in the same order, as written out
        return linear + ScaleKernel(
            get_covar_module_with_dim_scaled_prior(ard_num_dims=k, active_dims=root)
        )
    raise ConfigError(f"unknown GP kernel {kernel!r}; expected one of {list(KERNELS)}")


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
    """A GP's kernel and noise fitted on earlier runs, for GPs fitted on few runs.

    Earlier runs over the same domains (an earlier swarm, or the same swarm's other evaluations)
    say which domains matter and how smooth the target is; a GP given this
    (``GPSurrogate(kernel_from=...)``) keeps those hyper-parameters and only conditions on its own
    runs, so the few runs at the start of a search are not also spent learning them
    (BENCHMARKS.md, docs/decisions.md).

    ``surrogate`` is an unfitted single GP without a low-fidelity prior (e.g.
    ``make_surrogate("gp_hybrid")``); ``fit(X, y)`` fits a fresh copy of it on the earlier runs
    and keeps the hyper-parameters of its kernel and likelihood. ``y`` must be on the scale the
    later GP models: the same direction as its target (BO minimizes, so a score to maximize is
    passed negated). Picklable, like ``LowFidelityPrior``.
    """

    def __init__(self, surrogate: Surrogate) -> None:
        if not isinstance(surrogate, GPSurrogate) or surrogate.low_fidelity is not None:
            raise ConfigError(
                "a transferred kernel comes from a single GP surrogate without a low-fidelity "
                f"prior (e.g. make_surrogate('gp_hybrid')), got {type(surrogate).__name__}"
            )
        self.surrogate: GPSurrogate = surrogate

    def fit(self, X: object, y: object, domains: Sequence[str] | None = None) -> TransferredKernel:
        """Fit on earlier runs' weights ``X`` (n, d) and values ``y`` (n,); ``domains`` names
        the d columns. Nothing is kept when the fit fails."""
        arr, target = check_X_y(X, y)
        if domains is not None and len(domains) != arr.shape[1]:
            raise DataError(f"{len(domains)} domain names for {arr.shape[1]} weight columns")
        model = fresh(self.surrogate).fit(arr, target)
        self.state_ = model.kernel_state()
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
                f"(a {type(self.surrogate).__name__}); this GP has {kernel!r} on {features!r}: use "
                "the same surrogate for both"
            )
        check_domains("kernel_from", self.n_features_in_, self.domains_, domains)
