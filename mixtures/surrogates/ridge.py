"""Ridge regression on (square-rooted) weights: the fast, robust linear baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mixtures.surrogates.base import Features, Surrogate

#: Penalties tried by the built-in leave-one-out choice when ``alpha`` is None: a log grid wide
#: enough for 16 to 10^4 runs, chosen on the training runs only (efficient LOO of RidgeCV).
DEFAULT_ALPHAS = tuple(np.logspace(-3, 3, 13).tolist())


class RidgeSurrogate(Surrogate):
    """Standardized features, then ``sklearn.linear_model.Ridge``.

    ``alpha`` None picks the penalty by leave-one-out on the training runs (``RidgeCV``).
    """

    def __init__(
        self,
        *,
        alpha: float | None = None,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        features: Features = "sqrt",
        log_target: bool | Literal["auto"] = "auto",
        random_state: int | None = None,
    ) -> None:
        self.alpha = alpha
        self.alphas = alphas
        self.features = features
        self.log_target = log_target
        self.random_state = random_state  # unused: ridge is deterministic; kept for the API

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        reg = Ridge(alpha=self.alpha) if self.alpha is not None else RidgeCV(alphas=self.alphas)
        self.model_: Pipeline = make_pipeline(StandardScaler(), reg).fit(F, z)
        self.alpha_ = float(self.alpha if self.alpha is not None else reg.alpha_)
        self.coef_ = reg.coef_

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, None]:
        return self.model_.predict(F), None
