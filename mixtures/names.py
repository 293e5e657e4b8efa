"""Names of the surrogates and optimizers, importable without their libraries.

The CLI's choices and the config's literals need the names, not BoTorch or LightGBM; the
registries (``mixtures.surrogates``, ``mixtures.optimizers``) are checked against these by tests.
"""

from __future__ import annotations

#: Every name ``mixtures.surrogates.make_surrogate`` accepts.
SURROGATE_NAMES = (
    "ridge",
    "lightgbm",
    "regmix_lgbm",
    "gp",
    "gp_linear",
    "gp_hybrid",
    "mixing_law",
    "loglinear",
    "ensemble",
)
#: The surrogate ``optimize_mixture`` and the optimizers use unless told otherwise.
DEFAULT_SURROGATE = "ensemble"
#: The GP the BO optimizer uses unless told otherwise: linear in the weights and in their square
#: roots plus an RBF on the square roots. Against the linear + RBF GP (``gp_linear``, the default
#: before) it needs as few runs to the top 1% on RegMix's pool (median 7.5, 20 repeats), fewer on
#: Olmix's public 24- and 64-domain swarms (8.5 vs 9.5, 24 vs 35.5), see docs/decisions.md.
DEFAULT_BO_SURROGATE = "gp_hybrid"
#: Every name ``mixtures.optimizers.make_optimizer`` accepts.
OPTIMIZER_NAMES = ("random", "regmix", "bo")
