"""Ridge regression on (square-rooted) weights: the fast, robust linear baseline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mixtures.surrogates.base import Features, Surrogate

#: Penalties tried by the built-in leave-one-out choice when ``alpha`` is None: a log grid wide
#: enough for 16 to 10^4 runs, chosen on the training runs only (efficient LOO of RidgeCV).
DEFAULT_ALPHAS = tuple(np.logspace(-3, 3, 13).tolist())


@dataclass(kw_only=True, eq=False, repr=False)
class RidgeSurrogate(Surrogate):
    """Standardized features, then ``sklearn.linear_model.Ridge``.

    ``alpha`` None picks the penalty by leave-one-out on the training runs (``RidgeCV``).
    ``random_state`` is unused (ridge is deterministic) and kept for the common API.
    """

    alpha: float | None = None
    alphas: Sequence[float] = DEFAULT_ALPHAS
    features: Features = "sqrt"
    log_target: bool | Literal["auto"] = "auto"
    random_state: int | None = None

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        reg = Ridge(alpha=self.alpha) if self.alpha is not None else RidgeCV(alphas=self.alphas)
        self.model_: Pipeline = make_pipeline(StandardScaler(), reg).fit(F, z)
        self.alpha_ = float(self.alpha if self.alpha is not None else reg.alpha_)
        self.coef_ = reg.coef_

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, None]:
        return self.model_.predict(F), None
