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
    "mixing_law",
    "loglinear",
    "ensemble",
)
#: The surrogate ``optimize_mixture`` and the optimizers use unless told otherwise.
DEFAULT_SURROGATE = "ensemble"
#: Every name ``mixtures.optimizers.make_optimizer`` accepts.
OPTIMIZER_NAMES = ("random", "regmix", "bo")
