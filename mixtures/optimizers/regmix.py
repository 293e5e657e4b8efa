"""RegMix (Liu et al., 2024): fit a surrogate, simulate many mixtures, average the top-k."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError
from mixtures.mixture import Mixture
from mixtures.optimizers.base import Optimizer
from mixtures.sampling import sample_mixtures
from mixtures.surrogates import DEFAULT_SURROGATE, Surrogate, make_surrogate


class RegMixOptimizer(Optimizer):
    """One-shot surrogate optimizer.

    With fewer than ``n_init`` observations ``ask`` returns random prior draws (the initial
    design). Then each ``ask(n)`` fits ``surrogate`` on all observations and predicts
    ``n_candidates`` prior draws: the first proposal is the mean of the ``top_k`` best predicted
    draws (RegMix's choice; a mean of points inside the bounds stays inside them), the other
    ``n - 1`` are the best predicted draws themselves. Pool mode proposes the ``n`` unused pool
    members with the best predictions (a mean of pool members is not a pool member).
    """

    def __init__(
        self,
        *,
        domains: Sequence[str],
        bounds: Bounds,
        prior: np.ndarray,
        seed: int,
        surrogate: str = DEFAULT_SURROGATE,
        surrogate_params: dict[str, Any] | None = None,
        pool: np.ndarray | None = None,
        maximize: bool = False,
        n_init: int = 8,
        n_candidates: int = 20_000,
        top_k: int = 100,
    ) -> None:
        super().__init__(
            domains=domains, bounds=bounds, prior=prior, seed=seed, pool=pool, maximize=maximize
        )
        if n_init < 2 or n_candidates < 1 or top_k < 1:
            raise ConfigError(
                f"regmix needs n_init >= 2, n_candidates >= 1, top_k >= 1; got {n_init}, "
                f"{n_candidates}, {top_k}"
            )
        self.surrogate = surrogate
        self.surrogate_params = dict(surrogate_params or {})
        make_surrogate(surrogate, **self.surrogate_params)  # fail now on a bad name or params
        self.n_init = n_init
        self.n_candidates = n_candidates
        self.top_k = top_k

    @property
    def random_start(self) -> int:
        """The initial design: ``n_init`` random draws."""
        return self.n_init

    def fit_surrogate(self) -> Surrogate:
        """The surrogate fitted on all observations, on the minimized scale."""
        X, y = self.observed_arrays()
        model = make_surrogate(self.surrogate, random_state=self.seed, **self.surrogate_params)
        return model.fit(X, self._signed(y))

    def _choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        if self.n_observations < self.n_init:
            return self.rng.choice(candidates.shape[0], size=n, replace=False)
        pred = self.fit_surrogate().predict(candidates)
        return np.argsort(pred, kind="stable")[:n]

    def _propose(self, n: int) -> np.ndarray:
        candidates = self._candidates(n)
        if self.n_observations < self.n_init:
            return candidates[:n]
        model = self.fit_surrogate()
        order = np.argsort(model.predict(candidates), kind="stable")
        mean = candidates[order[: self.top_k]].mean(axis=0)
        return np.vstack([mean, candidates[order[: n - 1]]])

    def recommend(self) -> tuple[Mixture, float, float | None]:
        """RegMix's choice: the top-k mean of fresh draws (pool mode: the best predicted pool
        member), with the surrogate's prediction and std (None without one)."""
        model = self.fit_surrogate()
        if self.pool is not None:
            pred = model.predict(self.pool)
            row = self.pool[int(np.argmin(pred))]
        else:
            rng = np.random.default_rng([self.seed, self.n_observations, 1])
            draws = sample_mixtures(
                self.n_candidates, prior=self.prior, bounds=self.bounds, rng=rng
            )
            order = np.argsort(model.predict(draws), kind="stable")
            row = draws[order[: self.top_k]].mean(axis=0)
        return self._predicted(model, row)

    def _predicted(self, model: Surrogate, row: np.ndarray) -> tuple[Mixture, float, float | None]:
        sign = -1.0 if self.maximize else 1.0
        if getattr(model, "has_std", False):
            mean, std = model.predict(row[None, :], return_std=True)
            return self._mixture(row), sign * float(mean[0]), float(std[0])
        return self._mixture(row), sign * float(model.predict(row[None, :])[0]), None
