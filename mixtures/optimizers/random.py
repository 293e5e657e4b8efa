"""Random search: draws from the prior (pool mode: uniformly among unused pool members)."""

from __future__ import annotations

import numpy as np

from mixtures.optimizers.base import Optimizer


class RandomOptimizer(Optimizer):
    """The baseline every method is measured against; ignores the observations."""

    def _choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        if self.pool is None:
            return np.arange(n)  # prior draws are already random and distinct
        return self.rng.choice(candidates.shape[0], size=n, replace=False)
