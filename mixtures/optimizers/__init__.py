"""Optimizers with one ask/tell interface: random, RegMix (one shot) and BO.

``make_optimizer(name, domains=..., bounds=..., prior=..., seed=...)`` builds one by name; see
``mixtures.optimizers.base`` for the interface and the warm start (``observe``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError
from mixtures.names import DEFAULT_BO_SURROGATE, OPTIMIZER_NAMES
from mixtures.optimizers.base import Optimizer
from mixtures.optimizers.bo import BOOptimizer
from mixtures.optimizers.random import RandomOptimizer
from mixtures.optimizers.regmix import RegMixOptimizer
from mixtures.surrogates import DEFAULT_SURROGATE


def make_optimizer(
    name: str,
    *,
    domains: Sequence[str],
    bounds: Bounds,
    prior: np.ndarray,
    seed: int,
    surrogate: str | None = None,
    pool: np.ndarray | None = None,
    maximize: bool = False,
    **params: Any,
) -> Optimizer:
    """An optimizer by ``name``; ``surrogate`` defaults to the ensemble for regmix and
    ``gp_hybrid_linear`` (Bayesian linear in w and sqrt(w)) for bo (random ignores it);
    ``params`` go to the optimizer's constructor."""
    common = dict(domains=domains, bounds=bounds, prior=prior, seed=seed, pool=pool)
    try:
        if name == "random":
            return RandomOptimizer(**common, maximize=maximize, **params)
        if name == "regmix":
            model = surrogate or DEFAULT_SURROGATE
            return RegMixOptimizer(**common, maximize=maximize, surrogate=model, **params)
        if name == "bo":
            model = surrogate or DEFAULT_BO_SURROGATE
            return BOOptimizer(**common, maximize=maximize, surrogate=model, **params)
    except TypeError as exc:
        raise ConfigError(
            f"optimizer {name!r}: invalid parameters {sorted(params)}: {exc}"
        ) from exc
    raise ConfigError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZER_NAMES)}")


__all__ = [
    "OPTIMIZER_NAMES",
    "BOOptimizer",
    "Optimizer",
    "RandomOptimizer",
    "RegMixOptimizer",
    "make_optimizer",
]
