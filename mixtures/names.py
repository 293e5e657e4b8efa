"""Names of the surrogates and optimizers, importable without their libraries.

The CLI's choices and the config's literals need the names, not BoTorch or LightGBM; the
registries (``mixtures.surrogates``, ``mixtures.optimizers``) are checked against these by tests.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Every name ``mixtures.surrogates.make_surrogate`` accepts (a type, for configs' fields).
SurrogateName = Literal[
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
]
SURROGATE_NAMES: tuple[SurrogateName, ...] = get_args(SurrogateName)
#: The surrogates the BO optimizer proposes with: the GPs and the ensemble of GPs (a registry
#: test checks that exactly these are accepted by it).
BOSurrogateName = Literal["gp", "gp_linear", "gp_hybrid", "gp_hybrid_linear", "gp_average"]
BO_SURROGATE_NAMES: tuple[BOSurrogateName, ...] = get_args(BOSurrogateName)
#: The surrogate ``optimize_mixture`` and the optimizers use unless told otherwise.
DEFAULT_SURROGATE: SurrogateName = "ensemble"
#: The GP the BO optimizer uses unless told otherwise: Bayesian linear in the weights and in their
#: square roots (``gp_hybrid`` without its RBF part). It needs fewer runs to the top 1% than
#: ``gp_hybrid`` on a held-out pool (BENCHMARKS.md, docs/decisions.md).
DEFAULT_BO_SURROGATE: BOSurrogateName = "gp_hybrid_linear"
#: Every name ``mixtures.optimizers.make_optimizer`` accepts.
OptimizerName = Literal["random", "regmix", "bo"]
OPTIMIZER_NAMES: tuple[OptimizerName, ...] = get_args(OptimizerName)
