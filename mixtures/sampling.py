"""RegMix-style sampling of candidate mixtures, seeded through ``numpy.random.Generator``.

A draw is ``x ~ Dirichlet(s * d * prior)`` with a per-draw strength ``s`` spread log-uniformly
between ``min_strength`` and ``max_strength`` (RegMix draws its strengths so): small ``s`` gives
sparse mixtures near the simplex corners, large ``s`` mixtures close to the prior. The prior is
the token counts raised to ``temperature`` and normalized.

Bounds are respected by projecting every draw that falls outside them onto the bounded simplex
``{x : lower <= x <= upper, sum(x) = 1}`` (exact Euclidean projection); draws already inside are
returned unchanged. Rejection sampling was not used because its acceptance rate collapses for
tight bounds and a cap on rejections would have to fall back to something else silently.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError

#: Draws tried per requested mixture before giving up on finding ``n`` distinct ones. Generous:
#: a feasible, non-tiny region yields distinct rows almost always on the first try.
_DRAWS_PER_ROW = 20
#: Floor on the draw budget so that small ``n`` on coarse grids still gets a fair chance.
_MIN_DRAWS = 2_000
#: Rows projected at once; the exact projection holds (rows, 2d, d) floats in memory.
_PROJECTION_CELLS = 2_000_000


class SamplerConfig(BaseModel):
    """How candidate mixtures are drawn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["dirichlet", "uniform"] = Field(
        "dirichlet",
        description="'dirichlet': RegMix draws around the token prior with random strengths; "
        "'uniform': uniform on the simplex (Dirichlet(1, ..., 1)), prior and strengths unused.",
    )
    temperature: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="Prior = token_counts ** temperature, normalized: 1 is proportional to the "
        "counts, 0 is uniform, values in between flatten the counts (RegMix uses 0.5). "
        "Applied by sample_from_counts / token_prior, not by sample_mixtures, which takes "
        "the prior ready-made.",
    )
    min_strength: float = Field(
        0.1,
        gt=0.0,
        le=1e4,
        description="Smallest Dirichlet concentration per domain; small values give sparse draws.",
    )
    max_strength: float = Field(
        5.0,
        gt=0.0,
        le=1e4,
        description="Largest Dirichlet concentration per domain; strengths are log-uniform "
        "between min_strength and max_strength.",
    )
    dedupe_decimals: int = Field(
        3,
        ge=1,
        le=12,
        description="Mixtures equal after rounding to this many decimals count as duplicates "
        "(RegMix stores weights with 3 decimals).",
    )

    @model_validator(mode="after")
    def _strengths_ordered(self) -> SamplerConfig:
        if self.min_strength > self.max_strength:
            raise ValueError(
                f"min_strength ({self.min_strength}) must be <= max_strength ({self.max_strength})"
            )
        return self


def token_prior(counts: np.ndarray, *, temperature: float) -> np.ndarray:
    """Prior over domains: ``counts ** temperature``, normalized to sum to 1.

    ``temperature`` 0 gives the uniform prior (also for domains with zero tokens), 1 the
    token-proportional one. Raises ConfigError on negative, non-finite or all-zero counts.
    """
    c = np.asarray(counts, dtype=float)
    if c.ndim != 1 or c.size == 0:
        raise ConfigError(f"token counts must be a non-empty 1-d array, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ConfigError(f"token counts must be finite and >= 0, got {c.tolist()}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature}")
    if temperature == 0:
        return np.full(c.size, 1.0 / c.size)
    if c.sum() <= 0:
        raise ConfigError("token counts are all zero: no prior can be formed")
    p = c**temperature
    return p / p.sum()


def sample_mixtures(
    n: int,
    *,
    prior: np.ndarray,
    bounds: Bounds,
    rng: np.random.Generator,
    config: SamplerConfig = SamplerConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> np.ndarray:
    """Draw ``n`` distinct mixtures inside ``bounds``: (n, d), columns in ``bounds.domains`` order.

    ``prior`` (d,) is normalized here, so raw token counts ** temperature may be passed. Rows sum to
    1 (within 1e-12), lie inside ``bounds`` and are pairwise distinct after rounding to
    ``config.dedupe_decimals``. Raises ConfigError on invalid arguments, or when ``n`` distinct
    mixtures cannot be found in the bounded region (too small a region for the rounding grid).
    """
    p = _check_args(n, prior=prior, bounds=bounds, rng=rng)
    budget = max(_DRAWS_PER_ROW * n, _MIN_DRAWS)
    chosen: list[np.ndarray] = []
    seen: set[bytes] = set()
    drawn = 0
    while len(chosen) < n and drawn < budget:
        m = min(budget - drawn, max(2 * (n - len(chosen)), 64))
        x = project_to_bounds(_draw(m, prior=p, rng=rng, config=config), bounds)
        scale = 10.0**config.dedupe_decimals
        keys = np.rint(x * scale).astype(np.int64)  # integer keys: no -0.0 vs 0.0 surprises
        for row, key in zip(x, keys, strict=True):
            k = key.tobytes()
            if k not in seen:
                seen.add(k)
                chosen.append(row)
                if len(chosen) == n:
                    break
        drawn += m
    if len(chosen) < n:
        raise ConfigError(
            f"found only {len(chosen)} distinct mixtures (rounded to {config.dedupe_decimals} "
            f"decimals) in {drawn} draws, {n} requested: the bounded region is too small for that "
            "many, or a skewed prior with low strengths keeps the draws in a corner; lower n, "
            "widen the bounds, raise dedupe_decimals or the strengths"
        )
    return np.stack(chosen)


def sample_from_counts(
    n: int,
    *,
    counts: np.ndarray,
    bounds: Bounds,
    rng: np.random.Generator,
    config: SamplerConfig = SamplerConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> np.ndarray:
    """``sample_mixtures`` with the prior built from token ``counts`` at ``config.temperature``."""
    prior = token_prior(counts, temperature=config.temperature)
    return sample_mixtures(n, prior=prior, bounds=bounds, rng=rng, config=config)


def project_to_bounds(x: np.ndarray, bounds: Bounds) -> np.ndarray:
    """Euclidean projection of each row of ``x`` (m, d) onto {lower <= y <= upper, sum(y) = 1}.

    Rows already inside (within 1e-12) are returned unchanged. The projection is
    ``clip(x - tau, lower, upper)`` with the scalar ``tau`` where the clipped sum equals 1; that sum
    is piecewise linear and non-increasing in ``tau``, so ``tau`` is found exactly by locating the
    segment between sorted breakpoints and interpolating.
    """
    x = np.array(x, dtype=float, ndmin=2)  # (m, d), a copy
    inside = bounds.contains(x, atol=1e-12) & (np.abs(x.sum(axis=1) - 1.0) <= 1e-12)
    todo = np.flatnonzero(~inside)
    d = x.shape[1]
    chunk = max(1, _PROJECTION_CELLS // (2 * d * d))
    for start in range(0, todo.size, chunk):
        idx = todo[start : start + chunk]
        x[idx] = _project_rows(x[idx], bounds.lower, bounds.upper)
    return x


def _project_rows(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Exact projection of rows ``y`` (m, d); see ``project_to_bounds``."""
    breaks = np.sort(np.concatenate([y - lo, y - hi], axis=1), axis=1)  # (m, 2d)
    clipped = np.clip(y[:, None, :] - breaks[:, :, None], lo, hi)  # (m, 2d, d)
    g = clipped.sum(axis=2)  # (m, 2d), non-increasing along axis 1
    # g(first break) = sum(hi) >= 1 and g(last break) = sum(lo) <= 1 (Bounds checks both), so
    # a first break with g <= 1 exists in every row.
    k = np.argmax(g <= 1.0, axis=1)  # (m,)
    rows = np.arange(y.shape[0])
    km1 = np.maximum(k - 1, 0)
    b0, b1 = breaks[rows, km1], breaks[rows, k]
    g0, g1 = g[rows, km1], g[rows, k]
    denom = np.where(k > 0, g0 - g1, 1.0)  # g0 > 1 >= g1 when k > 0, so denom > 0
    tau = np.where(k > 0, b0 + (g0 - 1.0) * (b1 - b0) / denom, b1)
    return np.clip(y - tau[:, None], lo, hi)


def _draw(
    m: int, *, prior: np.ndarray, rng: np.random.Generator, config: SamplerConfig
) -> np.ndarray:
    """``m`` unbounded draws on the simplex, shape (m, d)."""
    d = prior.size
    if config.method == "uniform":
        return rng.dirichlet(np.ones(d), size=m)
    log_s = rng.uniform(math.log(config.min_strength), math.log(config.max_strength), size=m)
    # One Dirichlet call per draw: numpy's dirichlet handles tiny and zero concentrations
    # (zero-prior domains stay at 0), which a vectorized gamma trick would underflow on.
    return np.stack([rng.dirichlet(s * d * prior) for s in np.exp(log_s)])


def _check_args(
    n: int, *, prior: np.ndarray, bounds: Bounds, rng: np.random.Generator
) -> np.ndarray:
    """Validate the arguments of ``sample_mixtures``; return the normalized prior."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"n must be an integer >= 1, got {n!r}")
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    p = np.asarray(prior, dtype=float)
    d = len(bounds.domains)
    if p.shape != (d,):
        raise ConfigError(
            f"prior has shape {p.shape}, expected ({d},) for domains {list(bounds.domains)}"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ConfigError(f"prior must be finite, >= 0 and not all zero, got {p.tolist()}")
    return p / p.sum()
