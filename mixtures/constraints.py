"""Per-domain bounds on mixture weights, including the cap implied by repetition limits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mixtures.errors import ConfigError


@dataclass(frozen=True)
class Bounds:
    """Lower and upper weight per domain, arrays in the order of ``domains``."""

    domains: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        d = len(self.domains)
        lo = np.asarray(self.lower, dtype=float)
        hi = np.asarray(self.upper, dtype=float)
        if lo.shape != (d,) or hi.shape != (d,):
            raise ConfigError(f"bounds need {d} values each, got {lo.shape} and {hi.shape}")
        for name, a, b in zip(self.domains, lo, hi, strict=True):
            if not (0.0 <= a <= b <= 1.0):
                raise ConfigError(f"bounds of {name!r}: need 0 <= min <= max <= 1, got [{a}, {b}]")
        if lo.sum() > 1.0 + 1e-9:
            raise ConfigError(f"minimum weights sum to {lo.sum():.4g} > 1: no mixture is feasible")
        if hi.sum() < 1.0 - 1e-9:
            raise ConfigError(
                f"maximum weights sum to {hi.sum():.4g} < 1: no mixture is feasible "
                f"(upper bounds {dict(zip(self.domains, hi.round(4).tolist(), strict=True))})"
            )
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @classmethod
    def unbounded(cls, domains: Sequence[str]) -> Bounds:
        d = len(domains)
        return cls(tuple(domains), np.zeros(d), np.ones(d))

    @classmethod
    def build(
        cls,
        domains: Sequence[str],
        *,
        min_weight: Mapping[str, float] | None = None,
        max_weight: Mapping[str, float] | None = None,
        tokens_available: Mapping[str, float] | None = None,
        token_budget: float | None = None,
        max_epochs: float | None = None,
    ) -> Bounds:
        """Bounds from per-domain limits and, optionally, the repetition cap.

        With ``tokens_available``, ``token_budget`` and ``max_epochs`` given, a domain can take
        at most ``tokens_available[d] * max_epochs / token_budget`` of the mixture: beyond that its
        data would be repeated more than ``max_epochs`` times in a run of ``token_budget`` tokens.
        """
        names = tuple(domains)
        for label, given in (("min_weight", min_weight), ("max_weight", max_weight)):
            unknown = sorted(set(given or {}) - set(names))
            if unknown:
                raise ConfigError(
                    f"{label} names unknown domain(s) {unknown}; known: {list(names)}"
                )
        lo = np.array([float((min_weight or {}).get(d, 0.0)) for d in names])
        hi = np.array([float((max_weight or {}).get(d, 1.0)) for d in names])
        if tokens_available is not None and token_budget and max_epochs:
            missing = [d for d in names if d not in tokens_available]
            if missing:
                raise ConfigError(f"tokens_available lacks domain(s) {missing}")
            cap = np.array([tokens_available[d] * max_epochs / token_budget for d in names])
            hi = np.minimum(hi, cap)
        return cls(names, lo, hi)

    def contains(self, x: np.ndarray, *, atol: float = 1e-9) -> np.ndarray:
        """Boolean per row of ``x`` (n, d): inside the bounds."""
        x = np.atleast_2d(x)
        return np.all((x >= self.lower - atol) & (x <= self.upper + atol), axis=1)
