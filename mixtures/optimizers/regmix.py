"""RegMix (Liu et al., 2024): fit a surrogate, simulate many mixtures, average the top-k."""

from __future__ import annotations

from typing import Unpack

import numpy as np

from mixtures.errors import ConfigError
from mixtures.mixture import Mixture
from mixtures.optimizers.base import OptimizerArgs, SurrogateOptimizer
from mixtures.surrogates.base import Surrogate


class RegMixOptimizer(SurrogateOptimizer):
    """One-shot surrogate optimizer.

    ``surrogate`` is an unfitted surrogate (``SurrogateOptimizer``). With fewer than ``n_init``
    observations ``ask`` returns random prior draws (the initial design). Then each ``ask(n)``
    fits the surrogate on all observations and predicts ``n_candidates`` prior draws: the first
    proposal is the mean of the ``top_k`` best
    predicted draws (RegMix's choice; a mean of points inside the bounds stays inside them), the
    other ``n - 1`` are the best predicted draws themselves. Pool mode proposes the ``n`` unused
    pool members with the best predictions (a mean of pool members is not a pool member).
    """

    def __init__(
        self,
        *,
        surrogate: Surrogate,
        n_init: int = 8,
        n_candidates: int = 20_000,
        top_k: int = 100,
        **common: Unpack[OptimizerArgs],
    ) -> None:
        super().__init__(surrogate=surrogate, n_init=n_init, n_candidates=n_candidates, **common)
        if n_init < 2 or n_candidates < 1 or top_k < 1:
            raise ConfigError(
                f"regmix needs n_init >= 2, n_candidates >= 1, top_k >= 1; got {n_init}, "
                f"{n_candidates}, {top_k}"
            )
        self.top_k = top_k

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
        options = self._recommend_options()
        order = np.argsort(model.predict(options), kind="stable")
        if self.pool is not None:
            row = options[order[0]]
        else:
            row = options[order[: self.top_k]].mean(axis=0)
        return self._predicted(model, row)

    def _predicted(self, model: Surrogate, row: np.ndarray) -> tuple[Mixture, float, float | None]:
        sign = -1.0 if self.maximize else 1.0
        if model.has_std:
            mean, std = model.predict(row[None, :], return_std=True)
            return self._mixture(row), sign * float(mean[0]), float(std[0])
        return self._mixture(row), sign * float(model.predict(row[None, :])[0]), None
