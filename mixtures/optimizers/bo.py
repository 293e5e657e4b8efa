"""Bayesian optimization: BoTorch GP + qLogNoisyExpectedImprovement over a candidate set.

The acquisition is maximized over a discrete candidate set, not with ``optimize_acqf``'s
gradient steps under a simplex equality constraint: the GP works on ``sqrt(weights)``, whose
gradient is infinite on the simplex faces where good mixtures often lie (weights of 0), and the
candidates (prior draws plus Dirichlet perturbations of the best observations, projected onto the
bounded simplex) are feasible by construction. Batches are built greedily (BoTorch's
``optimize_acqf_discrete``: each pick conditions on the earlier ones as pending points). Pool
mode uses the unused pool members as the candidate set, so nothing is proposed twice.

With ``low_fidelity`` (a ``LowFidelityPrior`` fitted on cheaper runs, e.g. a 1M-parameter
swarm when the target is a 1B run) the GP gets the cheap surrogate's prediction as an input, and
the first ``n_init`` runs are the candidates it ranks best instead of random draws. With
``kernel_from`` (a ``TransferredKernel`` fitted on earlier runs over the same domains) the GP
keeps that kernel's hyper-parameters instead of fitting them to the few runs of the search; the
first runs stay random.

The surrogate may also be an ensemble of GPs (``gp_average``): its posterior is then the
weighted mixture of the members' posteriors, and since expected improvement is linear in the
posterior, the acquisition is the weighted mean of the members' (in log space, a log-sum-exp of
their log-EI plus the log weights). Each member reads its own features of the candidates, all
computed once per proposal.
"""

from __future__ import annotations

from typing import Unpack

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.objective import ScalarizedPosteriorTransform
from botorch.optim import optimize_acqf_discrete
from botorch.sampling import SobolQMCNormalSampler

from mixtures.errors import ConfigError
from mixtures.mixture import Mixture
from mixtures.optimizers.base import OptimizerArgs, SurrogateOptimizer
from mixtures.sampling import project_to_bounds, sample_mixtures
from mixtures.surrogates.base import Surrogate, fresh
from mixtures.surrogates.ensemble import EnsembleSurrogate
from mixtures.surrogates.gp import GPSurrogate, TransferredKernel, check_kernel_from, torch_threads
from mixtures.surrogates.transfer import LowFidelityPrior, check_low_fidelity

#: Prior draws per proposal and for the recommendation (besides the local perturbations).
BO_CANDIDATES = 5_000


class BOOptimizer(SurrogateOptimizer):
    """Batch BO; ``surrogate`` is an unfitted GP surrogate (its BoTorch model is used) or an
    ensemble of GPs such as ``make_surrogate("gp_average")`` (module doc). Each fit uses a fresh
    copy of it (``SurrogateOptimizer``), also given ``low_fidelity`` or ``kernel_from``.

    With fewer than ``n_init`` observations ``ask`` returns random prior draws (pool mode:
    random pool members); with ``low_fidelity`` it returns the candidates the cheap surrogate
    ranks best. ``n_init`` defaults to 4, or 2 with ``low_fidelity`` (the fewest a GP is fitted
    on: the cheap ranking is a better start than random draws). ``n_candidates`` prior draws
    plus ``n_local`` perturbations of each of the ``n_best`` best observations form the
    candidate set outside pool mode; ``concentration`` sets how tight the perturbations are
    (Dirichlet(concentration * best + 0.01)).
    """

    def __init__(
        self,
        *,
        surrogate: Surrogate,
        n_init: int | None = None,
        low_fidelity: LowFidelityPrior | None = None,
        kernel_from: TransferredKernel | None = None,
        n_candidates: int = BO_CANDIDATES,
        n_best: int = 5,
        n_local: int = 200,
        concentration: float = 100.0,
        mc_samples: int = 64,
        **common: Unpack[OptimizerArgs],
    ) -> None:
        if n_init is None:
            n_init = 4 if low_fidelity is None else 2
        super().__init__(surrogate=surrogate, n_init=n_init, n_candidates=n_candidates, **common)
        if not isinstance(surrogate, GPSurrogate) and not _all_gps(surrogate):
            raise ConfigError(
                "bo needs a GP surrogate (e.g. make_surrogate('gp')) or an ensemble of GPs "
                f"(e.g. make_surrogate('gp_average')), got {type(surrogate).__name__}"
            )
        self.low_fidelity = low_fidelity
        self.kernel_from = kernel_from
        if low_fidelity is not None or kernel_from is not None:
            if not isinstance(surrogate, GPSurrogate):
                raise ConfigError(
                    "bo with a low-fidelity prior or a transferred kernel needs a single GP "
                    f"surrogate, got {type(surrogate).__name__}"
                )
            self.fresh_surrogate()  # the GP refuses a prior and a kernel together
        if low_fidelity is not None:
            check_low_fidelity(low_fidelity, self.domains)
        if isinstance(surrogate, GPSurrogate) and kernel_from is not None:
            check_kernel_from(kernel_from, surrogate.kernel, surrogate.features, self.domains)
        if n_init < 2:
            raise ConfigError(f"bo needs n_init >= 2 to fit its first GP, got {n_init}")
        self.n_best = n_best
        self.n_local = n_local
        self.concentration = concentration
        self.mc_samples = mc_samples

    @property
    def random_start(self) -> int:
        """Runs made uniformly at random before the model chooses (0 with a low-fidelity prior,
        whose ranking chooses the first runs)."""
        return 0 if self.low_fidelity is not None else self.n_init

    def fresh_surrogate(self) -> Surrogate:
        """An unfitted copy of ``surrogate`` with the seed and the prior or kernel, if given."""
        extra = {"low_fidelity": self.low_fidelity, "kernel_from": self.kernel_from}
        given = {k: v for k, v in extra.items() if v is not None}
        return fresh(self.surrogate, random_state=self.seed, **given)

    def _candidates(self, n: int) -> np.ndarray:
        draws = sample_mixtures(
            max(self.n_candidates, 4 * n), prior=self.prior, bounds=self.bounds, rng=self.rng
        )
        if self.n_observations == 0:
            return self._drop_known(draws)
        X, y = self.observed_arrays()
        best = X[np.argsort(self._signed(y), kind="stable")[: self.n_best]]
        local = [
            self.rng.dirichlet(self.concentration * row + 0.01, size=self.n_local) for row in best
        ]
        around = project_to_bounds(np.vstack(local), self.bounds)
        return self._drop_known(np.vstack([draws, around]))

    def _choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        if self.n_observations < self.n_init:
            if self.low_fidelity is None:
                return self.rng.choice(candidates.shape[0], size=n, replace=False)
            cheap = self.low_fidelity.transform(candidates)
            return np.argsort(-cheap if self.maximize else cheap, kind="stable")[:n]
        gps, weights = gp_members(self.fit_surrogate())
        # every member's features of the candidates, computed once, side by side
        blocks = [gp.feature_matrix(candidates) for gp in gps]
        feats = torch.as_tensor(np.hstack(blocks), dtype=torch.float64)
        # The acquisition is built inside the seeded block too: pruning its baseline draws a
        # sampler seed from torch's global RNG, so outside it the proposals would depend on what
        # the process ran earlier (a replay repeat would differ between worker counts).
        with torch.random.fork_rng(), torch_threads(gps[0].threads):
            torch.manual_seed(self.seed)
            acqs = [self._acquisition(gp) for gp in gps]
            acq = MixtureAcquisition(acqs, [b.shape[1] for b in blocks], weights)
            picked, _ = optimize_acqf_discrete(acq, q=n, choices=feats, unique=True)
        # Map the chosen feature rows back to candidate rows (exact copies of rows of ``feats``).
        lookup = {tuple(row.tolist()): i for i, row in enumerate(feats)}
        return np.array([lookup[tuple(row.tolist())] for row in picked], dtype=int)

    def _acquisition(self, gp: GPSurrogate) -> qLogNoisyExpectedImprovement:
        X, _ = self.observed_arrays()
        baseline = torch.as_tensor(gp.feature_matrix(X), dtype=torch.float64)
        # The GP models the minimized value (log-transformed or not); BoTorch maximizes, so the
        # posterior is negated. exp() of a log target is monotone, so improvement in the model's
        # scale ranks candidates as improvement in the target would.
        negate = ScalarizedPosteriorTransform(weights=torch.tensor([-1.0], dtype=torch.float64))
        sampler = SobolQMCNormalSampler(sample_shape=torch.Size([self.mc_samples]), seed=self.seed)
        return qLogNoisyExpectedImprovement(
            model=gp.model_,
            X_baseline=baseline,
            sampler=sampler,
            posterior_transform=negate,
            prune_baseline=True,
        )

    def recommend(self) -> tuple[Mixture, float, float | None]:
        """The best predicted mixture (posterior mean) among the observed ones, the pool (pool
        mode) or fresh candidates, with its predicted value and std."""
        gp = self.fit_surrogate()
        X, _ = self.observed_arrays()
        options = np.vstack([X, self._recommend_options()])
        mean, std = gp.predict(options, return_std=True)
        i = int(np.argmin(mean))
        sign = -1.0 if self.maximize else 1.0
        return self._mixture(options[i]), sign * float(mean[i]), float(std[i])


def _all_gps(model: object) -> bool:
    """Whether ``model`` is an ensemble whose members are all GP surrogates."""
    if not isinstance(model, EnsembleSurrogate):
        return False
    members = model.member_models()
    return bool(members) and all(isinstance(m, GPSurrogate) for m in members)


def gp_members(model: Surrogate) -> tuple[list[GPSurrogate], list[float]]:
    """The fitted GPs of a fitted GP or ensemble of GPs (``BOOptimizer`` checked which), with
    their weights (summing to 1). Every GP preset models log(y) when y > 0 ("auto"), so the
    members' log-EI share one scale."""
    if isinstance(model, EnsembleSurrogate):
        return list(model.estimators_), [float(w) for w in model.weights_]
    return [model], [1.0]


class MixtureAcquisition(AcquisitionFunction):
    """Log-EI under the weighted mixture of several GPs' posteriors.

    ``forward(X)`` takes rows (batch, q, sum of ``widths``) holding each member's features in its
    own block of columns, in member order, and returns ``logsumexp_j(log w_j + logEI_j)``: EI is
    an expectation, so under a mixture of posteriors it is the weighted mean of the members'
    EIs. With one member it is that member's log-EI exactly. Pending points (greedy batches)
    reach every member as its block.
    """

    def __init__(
        self,
        acquisitions: list[qLogNoisyExpectedImprovement],
        widths: list[int],
        weights: list[float],
    ) -> None:
        super().__init__(model=acquisitions[0].model)
        self.acquisitions = acquisitions
        ends = np.cumsum(widths).tolist()
        self.blocks = [slice(end - w, end) for end, w in zip(ends, widths, strict=True)]
        self.log_weights = torch.log(torch.as_tensor(weights, dtype=torch.float64))
        super().set_X_pending(None)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        pairs = zip(self.acquisitions, self.blocks, strict=True)
        values = torch.stack([acq(X[..., block]) for acq, block in pairs])
        return torch.logsumexp(values + self.log_weights.reshape(-1, *[1] * (values.dim() - 1)), 0)

    def set_X_pending(self, X_pending: torch.Tensor | None = None) -> None:
        super().set_X_pending(X_pending)
        for acq, block in zip(self.acquisitions, self.blocks, strict=True):
            acq.set_X_pending(None if X_pending is None else X_pending[..., block])
