"""Parametric mixing laws (Ye et al., "Data Mixing Laws", 2024).

- ``form="exp"``: ``L(r) = c + k * exp(t . r)``, fitted by regularized non-linear least squares;
- ``form="loglinear"``: ``log L(r) = a + t . r`` (the exp law with ``c = 0``), a ridge fit in
  closed form.

Both are monotone in each weight and extrapolate smoothly, which is what ranks unseen mixtures
well from few runs; neither has a predictive std.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import least_squares
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mixtures.errors import DataError
from mixtures.surrogates.base import Features, Surrogate
from mixtures.surrogates.ridge import DEFAULT_ALPHAS

#: Offsets tried to start the exp fit: ``c = q * min(y)``; the best closed-form start wins.
_C_FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95)


@dataclass(kw_only=True, eq=False, repr=False)
class MixingLawSurrogate(Surrogate):
    """A mixing law on the raw target (``log_target`` is fixed by the form, see module doc).

    ``l2`` penalizes the exponents ``t`` (sum of squares, in target units squared per run);
    ``max_nfev`` caps the least-squares evaluations so tiny, underdetermined fits stay fast.
    ``random_state`` is unused (the fit is deterministic) and kept for the common API.
    """

    form: Literal["exp", "loglinear"] = "exp"
    l2: float = 1e-4
    features: Features = "x"
    max_nfev: int = 500
    random_state: int | None = None

    @property
    def log_target(self) -> bool:  # read by Surrogate.fit; the law decides, not the user
        return False

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        if self.form == "loglinear":
            if np.any(z <= 0):
                raise DataError(f"loglinear law needs a positive target, got min {z.min():.6g}")
            self.inner_ = make_pipeline(StandardScaler(), RidgeCV(alphas=DEFAULT_ALPHAS))
            self.inner_.fit(F, np.log(z))
            return
        if self.form != "exp":
            raise DataError(f"unknown mixing-law form {self.form!r}; expected 'exp' or 'loglinear'")
        n, d = F.shape
        lam = np.sqrt(self.l2)

        def residuals(p: np.ndarray) -> np.ndarray:
            return np.concatenate([p[0] + np.exp(p[1] + F @ p[2:]) - z, lam * p[2:]])

        def jacobian(p: np.ndarray) -> np.ndarray:
            e = np.exp(p[1] + F @ p[2:])  # (n,)
            top = np.column_stack([np.ones(n), e, e[:, None] * F])  # (n, 2 + d)
            bottom = np.hstack([np.zeros((d, 2)), lam * np.eye(d)])  # (d, 2 + d)
            return np.vstack([top, bottom])

        start = min((self._start(F, z, q) for q in _C_FRACTIONS), key=lambda p: _sse(residuals(p)))
        fit = least_squares(residuals, start, jac=jacobian, method="trf", max_nfev=self.max_nfev)
        self.c_, self.log_k_, self.t_ = float(fit.x[0]), float(fit.x[1]), fit.x[2:].copy()

    def _start(self, F: np.ndarray, z: np.ndarray, q: float) -> np.ndarray:
        """Closed-form start: ridge of ``log(z - c)`` on ``F`` for ``c = q * min(z)``."""
        c = q * float(z.min()) if z.min() > 0 else float(z.min()) - 1.0
        u = np.log(z - c)
        Fc = F - F.mean(axis=0)
        t = np.linalg.solve(Fc.T @ Fc + max(self.l2, 1e-6) * len(z) * np.eye(F.shape[1]), Fc.T @ u)
        return np.concatenate([[c, u.mean() - F.mean(axis=0) @ t], t])

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, None]:
        if self.form == "loglinear":
            return np.exp(self.inner_.predict(F)), None
        return self.c_ + np.exp(self.log_k_ + F @ self.t_), None


def _sse(r: np.ndarray) -> float:
    return float(r @ r)
