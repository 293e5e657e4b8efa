"""The closed forms behind the replay reports' 'random: expected' and 'ceiling' columns,
checked against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.replay_synthetic import random_expectation, random_start_floor


def _simulate(pool: int, top: int, n_random: int | None, draws: int = 8000) -> np.ndarray:
    """Runs to the first top run: uniform draws without replacement; with ``n_random``, an
    oracle takes a top run right after that many draws (if they all missed)."""
    rng = np.random.default_rng(0)
    out = np.empty(draws)
    for i in range(draws):
        first = int(np.flatnonzero(rng.permutation(pool) < top)[0]) + 1
        out[i] = first if n_random is None else min(first, n_random + 1)
    return out


@pytest.mark.parametrize(("pool", "top"), [(64, 1), (127, 2), (768, 8)])
def test_random_expectation_matches_simulation(pool: int, top: int) -> None:
    mean, median = random_expectation(pool, top)
    sim = _simulate(pool, top, None)
    assert mean == pytest.approx(sim.mean(), rel=0.03)
    assert median == pytest.approx(np.median(sim), abs=1)


@pytest.mark.parametrize(
    ("pool", "top", "n_random", "floor"),
    [(64, 1, 4, 5.0), (127, 2, 4, 5.0), (768, 8, 32, 33.0), (64, 1, 32, 32.0), (10, 5, 4, 1.0)],
)
def test_random_start_floor_is_the_oracle_median(
    pool: int, top: int, n_random: int, floor: float
) -> None:
    assert random_start_floor(pool, top, n_random) == floor
    assert np.median(_simulate(pool, top, n_random)) == pytest.approx(floor, abs=1)
