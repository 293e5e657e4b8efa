"""Surrogates of the target as a function of mixture weights, with the scikit-learn API.

``make_surrogate(name, random_state=..., **params)`` builds one by name:

====================  ==========================================================================
``ridge``             ridge on sqrt(weights), log target, penalty by leave-one-out
``lightgbm``          LightGBM with small-data settings (splits from 16 runs)
``regmix_lgbm``       LightGBM with RegMix's released settings on raw weights (the baseline)
``gp``                BoTorch GP, RBF-ARD on sqrt(weights) (Hellinger), log target; has a std
``gp_linear``         BoTorch GP, linear + RBF-ARD kernel on the weights, log target; has a std
``gp_hybrid``         BoTorch GP, linear on weights + linear and RBF-ARD on sqrt(weights); has a std
``gp_hybrid_linear``  the same without the RBF: Bayesian linear in w and sqrt(w) (BO's default)
``gp_average``        equal-weight mixture of ``gp_hybrid`` and ``gp_hybrid_linear``; has a std
``mixing_law``        Data Mixing Laws' ``c + k exp(t . r)``
``loglinear``         ``log L = a + t . r``
``ensemble``          mean of ``gp`` and ``mixing_law`` (the default); has a std
====================  ==========================================================================

Names are resolved here only: everything below takes surrogate objects. ``LowFidelityPrior``
(``transfer``) fits one of these on cheaper runs (smaller models, fewer tokens); a GP given it
(``low_fidelity=``) takes its prediction as one more input. ``TransferredKernel`` (``gp``) fits a
GP on earlier runs and keeps its kernel and noise; a GP of the same kernel given it
(``kernel_from=``) uses them instead of fitting its own.
"""

from __future__ import annotations

from typing import Any

from mixtures.errors import ConfigError
from mixtures.names import DEFAULT_SURROGATE
from mixtures.surrogates.base import Surrogate
from mixtures.surrogates.ensemble import EnsembleSurrogate
from mixtures.surrogates.gp import GPSurrogate, TransferredKernel
from mixtures.surrogates.lightgbm import LightGBMSurrogate
from mixtures.surrogates.mixing_law import MixingLawSurrogate
from mixtures.surrogates.ridge import RidgeSurrogate
from mixtures.surrogates.transfer import LowFidelityPrior


def surrogate_names() -> tuple[str, ...]:
    """Every name ``make_surrogate`` accepts."""
    return tuple(_presets())


def make_surrogate(name: str, *, random_state: int | None = None, **params: Any) -> Surrogate:
    """A fresh, unfitted surrogate by ``name``; ``params`` override its preset settings."""
    presets = _presets()
    if name not in presets:
        raise ConfigError(f"unknown surrogate {name!r}; expected one of {sorted(presets)}")
    cls, preset = presets[name]
    try:
        return cls(**{**preset, **params}, random_state=random_state)
    except TypeError as exc:
        message = f"surrogate {name!r}: invalid parameters {sorted(params)}: {exc}"
        raise ConfigError(message) from exc


def _presets() -> dict[str, tuple[type[Surrogate], dict[str, Any]]]:
    hybrid: dict[str, Any] = {"kernel": "hybrid", "features": "x+sqrt"}
    hybrid_linear: dict[str, Any] = {"kernel": "hybrid_linear", "features": "x+sqrt"}
    return {
        "ridge": (RidgeSurrogate, {}),
        "lightgbm": (LightGBMSurrogate, {}),
        "regmix_lgbm": (
            LightGBMSurrogate,
            {"preset": "regmix", "features": "x", "log_target": False},
        ),
        "gp": (GPSurrogate, {}),
        "gp_linear": (GPSurrogate, {"kernel": "linear+rbf", "features": "x"}),
        "gp_hybrid": (GPSurrogate, hybrid),
        "gp_hybrid_linear": (GPSurrogate, hybrid_linear),
        "gp_average": (
            EnsembleSurrogate,
            {
                "members": (GPSurrogate(**hybrid), GPSurrogate(**hybrid_linear)),
                "weighting": "equal",
            },
        ),
        "mixing_law": (MixingLawSurrogate, {"form": "exp"}),
        "loglinear": (MixingLawSurrogate, {"form": "loglinear"}),
        "ensemble": (EnsembleSurrogate, {}),
    }


__all__ = [
    "DEFAULT_SURROGATE",
    "EnsembleSurrogate",
    "GPSurrogate",
    "LightGBMSurrogate",
    "LowFidelityPrior",
    "MixingLawSurrogate",
    "RidgeSurrogate",
    "Surrogate",
    "TransferredKernel",
    "make_surrogate",
    "surrogate_names",
]
