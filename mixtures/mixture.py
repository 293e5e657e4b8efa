"""The ``Mixture`` value type: a frozen mapping domain -> weight on the simplex."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from mixtures.errors import MixtureError

#: Weights must sum to 1 within this tolerance. Imported tables round weights to 3 decimals
#: (RegMix rows sum to 1 within 0.004), so importers pass a looser tolerance explicitly.
SUM_TOLERANCE = 1e-6


class Mixture(Mapping[str, float]):
    """Weights over named domains: non-negative, finite, summing to 1.

    ``domains`` (optional) is the set of known domains: a weight for any other name is an error,
    and known domains without a weight get 0. Domain order is always the sorted names.
    """

    __slots__ = ("_weights",)

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        domains: Sequence[str] | None = None,
        tolerance: float = SUM_TOLERANCE,
        normalize: bool = False,
    ) -> None:
        if not weights:
            raise MixtureError("a mixture needs at least one domain weight, got none")
        if domains is not None:
            unknown = sorted(set(weights) - set(domains))
            if unknown:
                raise MixtureError(
                    f"unknown domain(s) {unknown} in mixture; known domains: {sorted(domains)}"
                )
        clean: dict[str, float] = {}
        for name, value in weights.items():
            if not isinstance(name, str) or not name:
                raise MixtureError(f"domain names must be non-empty strings, got {name!r}")
            try:
                w = float(value)
            except (TypeError, ValueError) as exc:
                raise MixtureError(f"weight of {name!r} is not a number: {value!r}") from exc
            if not math.isfinite(w):
                raise MixtureError(f"weight of {name!r} is {w}, expected a finite number")
            if w < 0:
                raise MixtureError(f"weight of {name!r} is negative ({w}), expected >= 0")
            clean[name] = w
        for name in domains or ():
            clean.setdefault(name, 0.0)
        total = math.fsum(clean.values())
        if normalize:
            if total <= 0:
                raise MixtureError("cannot normalize a mixture whose weights sum to 0")
            clean = {k: v / total for k, v in clean.items()}
        elif abs(total - 1.0) > tolerance:
            raise MixtureError(
                f"weights must sum to 1 (tolerance {tolerance}), got {total:.6g}: {clean}"
            )
        self._weights = {k: clean[k] for k in sorted(clean)}

    @classmethod
    def from_array(
        cls, domains: Sequence[str], values: Sequence[float] | np.ndarray, **kwargs: object
    ) -> Mixture:
        """Build from weights in the order of ``domains``."""
        arr = np.asarray(values, dtype=float).ravel()
        if arr.shape[0] != len(domains):
            raise MixtureError(f"got {arr.shape[0]} weights for {len(domains)} domains")
        return cls(dict(zip(domains, arr.tolist(), strict=True)), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def uniform(cls, domains: Sequence[str]) -> Mixture:
        return cls({d: 1.0 / len(domains) for d in domains}, normalize=True)

    def to_array(self, domains: Sequence[str]) -> np.ndarray:
        """Weights in the order of ``domains`` (missing domains are 0; unknown ones an error)."""
        extra = sorted(k for k, v in self._weights.items() if v > 0 and k not in set(domains))
        if extra:
            raise MixtureError(f"mixture has weight on {extra}, not among domains {list(domains)}")
        return np.array([self._weights.get(d, 0.0) for d in domains], dtype=float)

    def rounded(self, decimals: int = 6) -> dict[str, float]:
        """Weights rounded to ``decimals`` places that still sum to 1 (a valid ``Mixture``).

        Plain rounding of each weight can miss 1 by up to ``len/2 * 10**-decimals`` (3 domains:
        0.999999); the rounding residual goes to the largest weight.
        """
        out = {k: round(v, decimals) for k, v in self._weights.items()}
        largest = max(out, key=lambda k: out[k])
        rest = math.fsum(v for k, v in out.items() if k != largest)
        out[largest] = round(1.0 - rest, decimals)
        return out

    def __getitem__(self, key: str) -> float:
        return self._weights[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._weights)

    def __len__(self) -> int:
        return len(self._weights)

    def __hash__(self) -> int:
        return hash(tuple(self._weights.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mixture):
            return self._weights == other._weights
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:.4f}" for k, v in self._weights.items())
        return f"Mixture({inner})"
