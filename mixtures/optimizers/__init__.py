"""Optimizers with one ask/tell interface: random, RegMix (one shot) and BO.

``make_optimizer(name, domains=..., bounds=..., prior=..., seed=...)`` builds one by name and
resolves a surrogate given by name; the classes themselves take surrogate objects. See
``mixtures.optimizers.base`` for the interface and the warm start (``observe``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError
from mixtures.names import DEFAULT_BO_SURROGATE, DEFAULT_SURROGATE, OPTIMIZER_NAMES
from mixtures.optimizers.base import Optimizer, OptimizerArgs
from mixtures.optimizers.bo import BO_CANDIDATES, BOOptimizer
from mixtures.optimizers.random import RandomOptimizer
from mixtures.optimizers.regmix import RegMixOptimizer
from mixtures.surrogates import Surrogate, make_surrogate
from mixtures.surrogates.base import fresh


def make_optimizer(
    name: str,
    *,
    domains: Sequence[str],
    bounds: Bounds,
    prior: np.ndarray,
    seed: int,
    surrogate: str | Surrogate | None = None,
    surrogate_params: Mapping[str, Any] | None = None,
    pool: np.ndarray | None = None,
    maximize: bool = False,
    **params: Any,
) -> Optimizer:
    """An optimizer by ``name``. ``surrogate`` (a ``make_surrogate`` name or an unfitted
    surrogate, with ``surrogate_params`` overriding its settings) defaults to the ensemble for
    regmix and ``gp_hybrid_linear`` (Bayesian linear in w and sqrt(w)) for bo; random ignores
    both. ``params`` go to the optimizer's constructor."""
    common: OptimizerArgs = {
        "domains": domains,
        "bounds": bounds,
        "prior": prior,
        "seed": seed,
        "pool": pool,
        "maximize": maximize,
    }
    if name not in OPTIMIZER_NAMES:
        raise ConfigError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZER_NAMES)}")
    try:
        if name == "random":
            return RandomOptimizer(**common, **params)
        default = DEFAULT_SURROGATE if name == "regmix" else DEFAULT_BO_SURROGATE
        model = _surrogate(surrogate or default, surrogate_params or {})
        if name == "regmix":
            return RegMixOptimizer(surrogate=model, **common, **params)
        return BOOptimizer(surrogate=model, **common, **params)
    except TypeError as exc:
        raise ConfigError(
            f"optimizer {name!r}: invalid parameters {sorted(params)}: {exc}"
        ) from exc


def _surrogate(surrogate: str | Surrogate, params: Mapping[str, Any]) -> Surrogate:
    if isinstance(surrogate, str):
        return make_surrogate(surrogate, **params)
    return fresh(surrogate, **params) if params else surrogate


__all__ = [
    "BO_CANDIDATES",
    "OPTIMIZER_NAMES",
    "BOOptimizer",
    "Optimizer",
    "OptimizerArgs",
    "RandomOptimizer",
    "RegMixOptimizer",
    "make_optimizer",
]
