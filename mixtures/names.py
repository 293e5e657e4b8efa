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
    "gp_hybrid_linear",
    "gp_average",
    "mixing_law",
    "loglinear",
    "ensemble",
)
#: The surrogate ``optimize_mixture`` and the optimizers use unless told otherwise.
DEFAULT_SURROGATE = "ensemble"
#: The GP the BO optimizer uses unless told otherwise: Bayesian linear in the weights and in their
#: square roots (``gp_hybrid`` without its RBF part). Against ``gp_hybrid`` (the default before)
#: it needs fewer runs to the top 1% on a pool no result of which was seen before the adoption
#: rule was committed (benchmarks/bo_linear.py, docs/decisions.md).
DEFAULT_BO_SURROGATE = "gp_hybrid_linear"
#: The surrogates the BO optimizer proposes with: the GPs and the ensemble of GPs (a registry
#: test checks that exactly these are accepted by it).
BO_SURROGATE_NAMES = ("gp", "gp_linear", "gp_hybrid", "gp_hybrid_linear", "gp_average")
#: Every name ``mixtures.optimizers.make_optimizer`` accepts.
OPTIMIZER_NAMES = ("random", "regmix", "bo")
