"""Tests of RegMix-style mixture sampling: simplex, bounds, distinctness, seeding, parameters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError
from mixtures.sampling import (
    SamplerConfig,
    project_to_bounds,
    sample_from_counts,
    sample_mixtures,
    token_prior,
)

DOMAINS4 = ("a", "b", "c", "d")
COUNTS4 = np.array([1.0, 2.0, 4.0, 8.0])
#: Statistical tests on the mean use a fine dedupe grid: removing duplicates of the sparse
#: corner draws shifts the mean away from the prior on a coarse grid.
FINE = 6


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@st.composite
def feasible_bounds(draw: st.DrawFn) -> Bounds:
    """Random bounds around an interior point c, so the region is never empty."""
    d = draw(st.integers(2, 6))
    raw = np.array(draw(st.lists(st.floats(0.2, 1.0), min_size=d, max_size=d)))
    c = raw / raw.sum()
    a = np.array(draw(st.lists(st.floats(0.0, 0.9), min_size=d, max_size=d)))
    b = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=d, max_size=d)))
    lower = c * a
    upper = np.minimum(1.0, c + (1.0 - c) * b)
    return Bounds(tuple(f"d{i}" for i in range(d)), lower, upper)


@st.composite
def priors_for(draw: st.DrawFn, d: int) -> np.ndarray:
    # ratios up to 20: far more skewed priors put (almost) all draws in one corner, where
    # n distinct mixtures cannot be found, which is tested separately
    raw = draw(st.lists(st.floats(0.05, 1.0), min_size=d, max_size=d))
    p = np.array(raw)
    return p / p.sum()


PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(data=st.data(), method=st.sampled_from(["dirichlet", "uniform"]))
def test_rows_on_simplex_inside_bounds_and_distinct(data: st.DataObject, method: str) -> None:
    bounds = data.draw(feasible_bounds())
    prior = data.draw(priors_for(len(bounds.domains)))
    seed = data.draw(st.integers(0, 2**32 - 1))
    config = SamplerConfig(method=method)
    x = sample_mixtures(8, prior=prior, bounds=bounds, rng=_rng(seed), config=config)
    assert x.shape == (8, len(bounds.domains))
    assert np.all(x >= 0)
    np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-9)
    assert bounds.contains(x, atol=1e-12).all()
    keys = {tuple(r) for r in np.rint(x * 1e3).astype(int)}
    assert len(keys) == 8


@PROPERTY_SETTINGS
@given(data=st.data())
def test_same_seed_same_rows_other_seed_other_rows(data: st.DataObject) -> None:
    bounds = data.draw(feasible_bounds())
    prior = data.draw(priors_for(len(bounds.domains)))
    seed = data.draw(st.integers(0, 2**31))
    first = sample_mixtures(10, prior=prior, bounds=bounds, rng=_rng(seed))
    again = sample_mixtures(10, prior=prior, bounds=bounds, rng=_rng(seed))
    other = sample_mixtures(10, prior=prior, bounds=bounds, rng=_rng(seed + 1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def _mean_draw(temperature: float, n: int = 2000) -> np.ndarray:
    config = SamplerConfig(temperature=temperature, dedupe_decimals=FINE)
    bounds = Bounds.unbounded(DOMAINS4)
    return sample_from_counts(n, counts=COUNTS4, bounds=bounds, rng=_rng(1), config=config).mean(0)


def test_temperature_moves_the_mean_from_uniform_to_counts_proportional() -> None:
    proportional = COUNTS4 / COUNTS4.sum()
    mean0, mean_half, mean1 = _mean_draw(0.0), _mean_draw(0.5), _mean_draw(1.0)
    np.testing.assert_allclose(mean0, 0.25, atol=0.03)
    np.testing.assert_allclose(mean1, proportional, atol=0.03)
    # the largest domain's share grows with temperature, the smallest one's shrinks
    assert mean0[3] + 0.1 < mean_half[3] < mean1[3] - 0.1
    assert mean0[0] > mean_half[0] > mean1[0]


def test_token_prior_values_and_errors() -> None:
    np.testing.assert_allclose(token_prior(COUNTS4, temperature=0.0), 0.25)
    np.testing.assert_allclose(token_prior(COUNTS4, temperature=1.0), COUNTS4 / 15.0)
    np.testing.assert_allclose(token_prior(np.array([1.0, 4.0]), temperature=0.5), [1 / 3, 2 / 3])
    with pytest.raises(ConfigError, match="finite and >= 0"):
        token_prior(np.array([1.0, -1.0]), temperature=0.5)
    with pytest.raises(ConfigError, match="all zero"):
        token_prior(np.zeros(3), temperature=0.5)
    with pytest.raises(ConfigError, match="temperature"):
        token_prior(COUNTS4, temperature=-1.0)


def _sparsity(min_strength: float, max_strength: float) -> tuple[float, float]:
    """Share of near-zero weights and mean largest weight of 1000 draws."""
    config = SamplerConfig(min_strength=min_strength, max_strength=max_strength)
    prior = np.full(8, 1 / 8)
    x = sample_mixtures(
        1000,
        prior=prior,
        bounds=Bounds.unbounded([f"d{i}" for i in range(8)]),
        rng=_rng(2),
        config=config,
    )
    return float((x < 1e-3).mean()), float(x.max(axis=1).mean())


def test_low_strength_gives_sparser_draws() -> None:
    zeros_low, top_low = _sparsity(0.05, 0.05)
    zeros_mid, top_mid = _sparsity(0.1, 5.0)
    zeros_high, top_high = _sparsity(50.0, 50.0)
    assert zeros_low > 0.5 > zeros_mid > zeros_high
    assert zeros_high < 0.01
    assert top_low > 0.7 > top_mid > top_high
    assert top_high < 0.25


def _top_weights(min_strength: float, max_strength: float) -> np.ndarray:
    config = SamplerConfig(min_strength=min_strength, max_strength=max_strength)
    x = sample_mixtures(
        1000,
        prior=np.full(8, 1 / 8),
        bounds=Bounds.unbounded([f"d{i}" for i in range(8)]),
        rng=_rng(3),
        config=config,
    )
    return x.max(axis=1)


def test_strengths_spread_between_min_and_max() -> None:
    # a wide range mixes sparse draws (top weight > 0.7, measured 12%) with dense ones (top < 0.3,
    # measured 54%); a fixed strength of 1 gives almost no sparse draws (measured 0.1%)
    wide, fixed = _top_weights(0.05, 50.0), _top_weights(1.0, 1.0)
    assert (wide > 0.7).mean() > 0.06 > 0.01 > (fixed > 0.7).mean()
    assert (wide < 0.3).mean() > 0.45


def test_method_uniform_ignores_the_prior() -> None:
    bounds = Bounds.unbounded(DOMAINS4)
    prior = COUNTS4 / COUNTS4.sum()
    uni = sample_mixtures(
        2000, prior=prior, bounds=bounds, rng=_rng(4), config=SamplerConfig(method="uniform")
    )
    dirichlet = sample_mixtures(
        2000, prior=prior, bounds=bounds, rng=_rng(4), config=SamplerConfig(dedupe_decimals=FINE)
    )
    np.testing.assert_allclose(uni.mean(0), 0.25, atol=0.03)
    np.testing.assert_allclose(dirichlet.mean(0), prior, atol=0.03)
    assert dirichlet[:, 3].mean() > uni[:, 3].mean() + 0.2


def test_dedupe_decimals_sets_the_grid_of_distinct_rows() -> None:
    bounds = Bounds.unbounded(("a", "b"))
    prior = np.array([0.5, 0.5])
    x = sample_mixtures(
        50, prior=prior, bounds=bounds, rng=_rng(5), config=SamplerConfig(dedupe_decimals=2)
    )
    assert len(set(np.round(x[:, 0], 2))) == 50
    # only 11 distinct values of the first weight exist at 1 decimal
    with pytest.raises(ConfigError, match=r"found only 11 distinct mixtures \(rounded to 1"):
        sample_mixtures(
            12, prior=prior, bounds=bounds, rng=_rng(5), config=SamplerConfig(dedupe_decimals=1)
        )


def test_too_many_distinct_rows_on_two_domains_raises() -> None:
    with pytest.raises(ConfigError, match="5000 requested"):
        sample_mixtures(
            5000, prior=np.array([0.5, 0.5]), bounds=Bounds.unbounded(("a", "b")), rng=_rng(0)
        )


def test_bounds_are_respected_and_change_the_draws() -> None:
    bounds = Bounds.build(DOMAINS4, min_weight={"a": 0.3}, max_weight={"d": 0.2})
    prior = COUNTS4 / COUNTS4.sum()  # pushes mass to d, which the bound caps
    x = sample_mixtures(500, prior=prior, bounds=bounds, rng=_rng(6))
    assert x[:, 0].min() >= 0.3 and x[:, 3].max() <= 0.2
    np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-12)
    free = sample_mixtures(500, prior=prior, bounds=Bounds.unbounded(DOMAINS4), rng=_rng(6))
    assert free[:, 3].mean() > 0.5 > 0.2 >= x[:, 3].mean()


def test_repetition_cap_bounds_are_respected() -> None:
    bounds = Bounds.build(
        DOMAINS4,
        tokens_available={"a": 1e6, "b": 1e6, "c": 5e6, "d": 1e9},
        token_budget=1e7,
        max_epochs=2.0,
    )  # caps a and b at 0.2, c at 1.0
    x = sample_mixtures(300, prior=np.full(4, 0.25), bounds=bounds, rng=_rng(7))
    assert x[:, 0].max() <= 0.2 + 1e-12 and x[:, 1].max() <= 0.2 + 1e-12


def test_tiny_region_raises_instead_of_returning_copies() -> None:
    eps = 1e-7
    bounds = Bounds(("a", "b", "c"), np.array([0.3, 0.3, 0.4 - eps]), np.ones(3))
    with pytest.raises(ConfigError, match="too small"):
        sample_mixtures(5, prior=np.full(3, 1 / 3), bounds=bounds, rng=_rng(0))


def test_projection_is_the_closest_point_of_the_region() -> None:
    bounds = Bounds(("a", "b", "c"), np.array([0.1, 0.0, 0.0]), np.array([0.5, 0.6, 1.0]))
    y = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.0, 1.0]])
    x = project_to_bounds(y, bounds)
    np.testing.assert_allclose(x[0], [0.5, 0.3, 0.2], atol=1e-12)
    assert bounds.contains(x).all()
    np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-12)
    # compare against many feasible points: none is closer to y than its projection
    rng = _rng(8)
    cand = project_to_bounds(rng.dirichlet(np.ones(3), size=5000), bounds)
    for yi, xi in zip(y, x, strict=True):
        assert np.linalg.norm(yi - xi) <= np.linalg.norm(cand - yi, axis=1).min() + 1e-12


def test_projection_known_values_and_identity_inside() -> None:
    bounds = Bounds(("a", "b"), np.array([0.0, 0.0]), np.array([0.5, 1.0]))
    np.testing.assert_allclose(project_to_bounds(np.array([[0.7, 0.3]]), bounds), [[0.5, 0.5]])
    # off the simplex: the excess is removed equally before clipping
    np.testing.assert_allclose(project_to_bounds(np.array([[0.4, 0.8]]), bounds), [[0.3, 0.7]])
    inside = np.array([[0.123456789, 0.876543211]])
    np.testing.assert_array_equal(project_to_bounds(inside, bounds), inside)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be an integer >= 1"),
        ({"n": 2.5}, "n must be an integer >= 1"),
        ({"prior": np.array([0.5, 0.5])}, r"prior has shape \(2,\), expected \(4,\)"),
        ({"prior": np.array([0.5, 0.5, -0.5, 0.5])}, "prior must be finite, >= 0"),
        ({"prior": np.array([0.5, np.nan, 0.25, 0.25])}, "prior must be finite"),
        ({"prior": np.zeros(4)}, "not all zero"),
        ({"rng": 42}, "rng must be a numpy.random.Generator"),
    ],
)
def test_invalid_arguments_raise_config_error(kwargs: dict, message: str) -> None:
    args = {"n": 5, "prior": np.full(4, 0.25), "bounds": Bounds.unbounded(DOMAINS4), "rng": _rng()}
    args.update(kwargs)
    n = args.pop("n")
    with pytest.raises(ConfigError, match=message):
        sample_mixtures(n, **args)


def test_zero_prior_domain_stays_empty_unless_bounded_below() -> None:
    prior = np.array([0.0, 0.5, 0.5])
    x = sample_mixtures(50, prior=prior, bounds=Bounds.unbounded(("a", "b", "c")), rng=_rng(9))
    assert np.all(x[:, 0] == 0.0)
    lifted = Bounds.build(("a", "b", "c"), min_weight={"a": 0.1})
    y = sample_mixtures(50, prior=prior, bounds=lifted, rng=_rng(9))
    assert np.all(y[:, 0] >= 0.1)


def test_sampler_config_validates() -> None:
    with pytest.raises(ValidationError, match="min_strength"):
        SamplerConfig(min_strength=5.0, max_strength=1.0)
    with pytest.raises(ValidationError, match="extra"):
        SamplerConfig(temprature=0.5)
    with pytest.raises(ValidationError):
        SamplerConfig(temperature=-0.1)
    with pytest.raises(ValidationError):
        SamplerConfig(method="sobol")
    with pytest.raises(ValidationError):
        SamplerConfig(dedupe_decimals=0)
    with pytest.raises(ValidationError, match="frozen"):
        SamplerConfig().temperature = 1.0  # type: ignore[misc]
