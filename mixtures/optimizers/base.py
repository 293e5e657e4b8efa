"""The ask/tell optimizer interface shared by every search method.

State is the observation table (mixtures and values). An optimizer can be rebuilt from it: create
a fresh one with the same arguments and ``observe`` the observations again.

- ``ask(n)`` proposes ``n`` distinct mixtures inside the bounds (pool mode: ``n`` unused pool
  members) and remembers them as pending;
- ``tell(mixtures, values)`` records results of pending mixtures (or, in pool mode, of any pool
  member); anything else is an error, so a typo or a stale proposal fails loudly;
- ``observe(mixtures, values)`` records results of mixtures that were never asked (warm start
  from an existing sweep or earlier rounds); they must be valid mixtures over ``domains`` but may
  lie outside the bounds (older sweeps may have used other bounds); proposals never do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Required, TypedDict, Unpack

import numpy as np
import polars as pl

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, DataError, MixtureError
from mixtures.mixture import Mixture
from mixtures.sampling import sample_mixtures
from mixtures.surrogates.base import Surrogate, fresh

#: Pool rows and told mixtures must sum to 1 within this: imported tables round weights to 3
#: decimals (RegMix rows sum to 1 within 0.004), the run table accepts 0.005.
POOL_SUM_TOLERANCE = 5e-3
#: Decimals of the key that identifies a mixture (pending proposals, used pool members).
_KEY_DECIMALS = 9


class OptimizerArgs(TypedDict, total=False):
    """The constructor arguments every optimizer takes (see ``Optimizer``); subclasses take them
    as ``**common: Unpack[OptimizerArgs]`` and pass them on."""

    domains: Required[Sequence[str]]
    bounds: Required[Bounds]
    prior: Required[np.ndarray]
    seed: Required[int]
    pool: np.ndarray | None
    maximize: bool


class Optimizer:
    """Base class; subclasses implement ``_choose(n, candidates) -> indices into candidates``.

    ``candidates`` (m, d) are the unused pool members in pool mode, otherwise draws from the prior
    (``_candidates``). Values are minimized unless ``maximize``.
    """

    def __init__(
        self,
        *,
        domains: Sequence[str],
        bounds: Bounds,
        prior: np.ndarray,
        seed: int,
        pool: np.ndarray | None = None,
        maximize: bool = False,
    ) -> None:
        self.domains = tuple(domains)
        if tuple(bounds.domains) != self.domains:
            raise ConfigError(
                f"bounds are over {list(bounds.domains)}, the optimizer over {list(self.domains)}"
            )
        if list(self.domains) != sorted(self.domains) or len(set(self.domains)) != len(domains):
            raise ConfigError(f"domains must be sorted and distinct, got {list(self.domains)}")
        self.bounds = bounds
        self.prior = _check_prior(prior, len(self.domains))
        self.seed = int(seed)
        self.maximize = bool(maximize)
        self.rng = np.random.default_rng(self.seed)
        self.pool = None if pool is None else _check_pool(pool, bounds)
        self._pool_index = (
            {} if self.pool is None else {_key(row): i for i, row in enumerate(self.pool)}
        )
        self._used_pool: set[int] = set()
        self._pending: dict[tuple[float, ...], Mixture] = {}
        self._X: list[np.ndarray] = []
        self._y: list[float] = []
        self._source: list[str] = []

    # ------------------------------------------------------------------ the interface
    def ask(self, n: int) -> list[Mixture]:
        """``n`` new distinct mixtures to run next (pool mode: unused pool members)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"ask(n) needs an integer n >= 1, got {n!r}")
        if self.pool is not None:
            free = np.array(sorted(set(range(len(self.pool))) - self._used_pool), dtype=int)
            if n > free.size:
                raise ConfigError(f"ask({n}): only {free.size} unused pool members are left")
            chosen = free[self._checked_choice(n, self.pool[free])]
            self._used_pool.update(int(i) for i in chosen)
            rows = self.pool[chosen]
        else:
            rows = self._propose(n)
        out = [self._mixture(row) for row in rows]
        for m, row in zip(out, rows, strict=True):
            self._pending[_key(row)] = m
        return out

    def tell(self, mixtures: Sequence[Mixture], values: Sequence[float] | np.ndarray) -> None:
        """Record results of asked mixtures (pool mode: of any pool member)."""
        rows, vals = self._validate(mixtures, values, where="tell")
        for i, row in enumerate(rows):
            key = _key(row)
            if key not in self._pending and key not in self._pool_index:
                raise DataError(
                    f"tell: mixture {i} was not asked (nor is it a pool member): "
                    f"{mixtures[i]!r}; use observe(...) for results of other mixtures"
                )
        self._store(rows, vals, "asked")

    def observe(self, mixtures: Sequence[Mixture], values: Sequence[float] | np.ndarray) -> None:
        """Record results of mixtures that were not asked (warm start, resume)."""
        rows, vals = self._validate(mixtures, values, where="observe")
        self._store(rows, vals, "observed")

    def best(self) -> tuple[Mixture, float]:
        """The best observed mixture and its value."""
        if not self._y:
            raise DataError("best(): no observations yet; tell or observe some results first")
        i = int(np.argmax(self._y) if self.maximize else np.argmin(self._y))
        return self._mixture(self._X[i]), self._y[i]

    @property
    def random_start(self) -> int | None:
        """How many runs are uniform random draws before a model chooses; None: every run (the
        base class and random search). ``replay`` derives the ceiling on the saving from it."""
        return None

    def recommend(self) -> tuple[Mixture, float, float | None]:
        """The mixture to choose now, its predicted value and predicted std (None if unknown).

        The base class recommends the best observation (its value, no std); model-based
        optimizers override this with the surrogate's choice.
        """
        m, v = self.best()
        return m, v, None

    @property
    def observations(self) -> pl.DataFrame:
        """One row per observation: ``w:<domain>`` weights, ``value``, ``source``
        (``asked`` or ``observed``)."""
        data: dict[str, object] = {
            f"w:{d}": [float(x[j]) for x in self._X] for j, d in enumerate(self.domains)
        }
        data["value"] = list(self._y)
        data["source"] = list(self._source)
        schema: dict[str, pl.DataType] = {f"w:{d}": pl.Float64() for d in self.domains}
        schema.update({"value": pl.Float64(), "source": pl.Utf8()})
        return pl.DataFrame(data, schema=schema)

    @property
    def n_observations(self) -> int:
        return len(self._y)

    def observed_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Observed weights (n, d) and values (n,) as given (not sign-flipped)."""
        d = len(self.domains)
        X = np.array(self._X).reshape(-1, d)
        return X, np.array(self._y, dtype=float)

    def pool_index(self, mixture: Mixture) -> int:
        """Row of ``mixture`` in the pool; DataError if it is not a pool member."""
        key = _key(mixture.to_array(self.domains))
        if key not in self._pool_index:
            raise DataError(f"{mixture!r} is not a member of the pool")
        return self._pool_index[key]

    # ------------------------------------------------------------------ for subclasses
    def _propose(self, n: int) -> np.ndarray:
        """``n`` distinct new mixtures (n, d) outside pool mode: by default ``_choose`` among
        ``_candidates``; subclasses may build mixtures that are not candidates."""
        candidates = self._candidates(n)
        return candidates[self._checked_choice(n, candidates)]

    def _choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        """Indices (n,) of distinct rows of ``candidates`` (m, d) to propose."""
        raise NotImplementedError

    def _candidates(self, n: int) -> np.ndarray:
        """Candidate mixtures outside pool mode: prior draws, minus pending and observed ones."""
        m = max(4 * n, getattr(self, "n_candidates", 4 * n))
        draws = sample_mixtures(m, prior=self.prior, bounds=self.bounds, rng=self.rng)
        return self._drop_known(draws)

    def _drop_known(self, candidates: np.ndarray) -> np.ndarray:
        known = set(self._pending) | {_key(x) for x in self._X}
        keep = [i for i, row in enumerate(candidates) if _key(row) not in known]
        return candidates[keep]

    def _signed(self, y: np.ndarray) -> np.ndarray:
        """Values to minimize."""
        return -y if self.maximize else y

    # ------------------------------------------------------------------ helpers
    def _checked_choice(self, n: int, candidates: np.ndarray) -> np.ndarray:
        idx = np.asarray(self._choose(n, candidates), dtype=int)
        if idx.shape != (n,) or len(set(idx.tolist())) != n:
            raise RuntimeError(f"{type(self).__name__} chose {idx.tolist()}, not {n} distinct rows")
        return idx

    def _mixture(self, row: np.ndarray) -> Mixture:
        return Mixture.from_array(self.domains, row, tolerance=POOL_SUM_TOLERANCE)

    def _store(self, rows: list[np.ndarray], values: list[float], source: str) -> None:
        """Record validated results: no longer pending, their pool members used."""
        for row, value in zip(rows, values, strict=True):
            key = _key(row)
            self._pending.pop(key, None)
            if key in self._pool_index:
                self._used_pool.add(self._pool_index[key])
            self._X.append(row)
            self._y.append(value)
            self._source.append(source)

    def _validate(
        self, mixtures: Sequence[Mixture], values: Sequence[float] | np.ndarray, *, where: str
    ) -> tuple[list[np.ndarray], list[float]]:
        if isinstance(mixtures, Mixture) or not isinstance(mixtures, Sequence):
            raise DataError(f"{where}: mixtures must be a sequence of Mixture, got {mixtures!r}")
        try:
            vals = [float(v) for v in np.asarray(values, dtype=float).ravel()]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: values must be numbers, got {values!r}") from exc
        if len(mixtures) != len(vals):
            raise DataError(f"{where}: {len(mixtures)} mixtures but {len(vals)} values")
        rows = []
        for i, (m, v) in enumerate(zip(mixtures, vals, strict=True)):
            if not isinstance(m, Mixture):
                raise DataError(f"{where}: item {i} is a {type(m).__name__}, expected a Mixture")
            if set(m) != set(self.domains):
                raise DataError(
                    f"{where}: mixture {i} is over {sorted(m)}, expected {list(self.domains)}"
                )
            if not math.isfinite(v):
                raise DataError(f"{where}: value {i} is {v}, expected a finite number")
            row = m.to_array(self.domains)
            if abs(row.sum() - 1.0) > POOL_SUM_TOLERANCE:
                raise MixtureError(f"{where}: mixture {i} sums to {row.sum():.6g}, expected 1")
            rows.append(row)
        return rows, [float(v) for v in vals]


class SurrogateOptimizer(Optimizer):
    """Base of the optimizers a surrogate drives (RegMix, BO).

    ``surrogate`` is an unfitted surrogate; every fit uses a fresh copy seeded with the
    optimizer's seed. The first ``n_init`` runs are the initial design; ``n_candidates`` prior
    draws are the candidates outside pool mode.
    """

    def __init__(
        self,
        *,
        surrogate: Surrogate,
        n_init: int,
        n_candidates: int,
        **common: Unpack[OptimizerArgs],
    ) -> None:
        super().__init__(**common)
        if not isinstance(surrogate, Surrogate):
            raise ConfigError(
                f"{type(self).__name__} needs a surrogate object (make_surrogate(name)), got "
                f"{type(surrogate).__name__}"
            )
        self.surrogate = surrogate
        self.n_init = n_init
        self.n_candidates = n_candidates

    @property
    def random_start(self) -> int:
        """The initial design: ``n_init`` random draws."""
        return self.n_init

    def fresh_surrogate(self) -> Surrogate:
        """An unfitted copy of ``surrogate`` with the optimizer's seed."""
        return fresh(self.surrogate, random_state=self.seed)

    def fit_surrogate(self) -> Surrogate:
        """The surrogate fitted on all observations, on the minimized scale."""
        X, y = self.observed_arrays()
        return self.fresh_surrogate().fit(X, self._signed(y))

    def _recommend_options(self) -> np.ndarray:
        """What a recommendation chooses among (besides observations): the pool, or
        ``n_candidates`` prior draws from a generator of their own, so that asking and
        recommending never shift each other's draws."""
        if self.pool is not None:
            return self.pool
        rng = np.random.default_rng([self.seed, self.n_observations, 1])
        return sample_mixtures(self.n_candidates, prior=self.prior, bounds=self.bounds, rng=rng)


def _key(row: np.ndarray) -> tuple[float, ...]:
    return tuple(np.round(np.asarray(row, dtype=float), _KEY_DECIMALS).tolist())


def _check_prior(prior: np.ndarray, d: int) -> np.ndarray:
    p = np.asarray(prior, dtype=float)
    if p.shape != (d,) or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ConfigError(f"prior must be {d} finite values >= 0, not all 0, got {p.tolist()}")
    return p / p.sum()


def _check_pool(pool: np.ndarray, bounds: Bounds) -> np.ndarray:
    arr = np.asarray(pool, dtype=float)
    d = len(bounds.domains)
    if arr.ndim != 2 or arr.shape[1] != d or arr.shape[0] == 0:
        raise DataError(f"pool must be a non-empty (m, {d}) array, got shape {arr.shape}")
    sums = arr.sum(axis=1)
    bad = np.flatnonzero(
        ~np.isfinite(sums) | (np.abs(sums - 1.0) > POOL_SUM_TOLERANCE) | (arr.min(axis=1) < 0)
    )
    if bad.size:
        raise DataError(
            f"pool row {int(bad[0])} is not a mixture (sum {sums[bad[0]]:.6g}, "
            f"min {arr[bad[0]].min():.6g}); {bad.size} bad row(s)"
        )
    outside = np.flatnonzero(~bounds.contains(arr))
    if outside.size:
        raise DataError(f"pool row {int(outside[0])} lies outside the bounds ({outside.size} rows)")
    keys = {_key(row) for row in arr}
    if len(keys) != arr.shape[0]:
        raise DataError(f"pool has {arr.shape[0] - len(keys)} duplicate row(s)")
    return arr
