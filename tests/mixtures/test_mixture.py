import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, MixtureError
from mixtures.mixture import Mixture

weights = st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=12).filter(
    lambda w: sum(w) > 1e-3
)


@given(weights)
def test_normalized_mixture_is_on_the_simplex_in_sorted_order(ws):
    m = Mixture({f"d{i:02d}": w for i, w in enumerate(ws)}, normalize=True)
    assert math.isclose(sum(m.values()), 1.0, abs_tol=1e-9)
    assert all(v >= 0 for v in m.values())
    assert list(m) == sorted(m)
    arr = m.to_array(list(m))
    assert Mixture.from_array(list(m), arr) == m


@given(weights, st.floats(0.01, 0.5))
def test_sums_off_one_are_rejected(ws, off):
    total = sum(ws)
    scaled = {f"d{i}": w / total * (1 + off) for i, w in enumerate(ws)}
    with pytest.raises(MixtureError, match="must sum to 1"):
        Mixture(scaled)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"a": -0.1, "b": 1.1}, "negative"),
        ({"a": float("nan"), "b": 1.0}, "finite"),
        ({"a": float("inf")}, "finite"),
        ({"a": "x"}, "not a number"),
        ({}, "at least one"),
    ],
)
def test_invalid_weights_name_the_problem(weights, message):
    with pytest.raises(MixtureError, match=message):
        Mixture(weights)


def test_unknown_domains_and_missing_ones():
    with pytest.raises(MixtureError, match=r"unknown domain\(s\) \['zzz'\]"):
        Mixture({"a": 0.5, "zzz": 0.5}, domains=["a", "b"])
    m = Mixture({"a": 1.0}, domains=["a", "b"])
    assert m["b"] == 0.0
    with pytest.raises(MixtureError, match="not among domains"):
        Mixture({"a": 0.5, "c": 0.5}).to_array(["a", "b"])


def test_bounds_feasibility_and_repetition_cap():
    with pytest.raises(ConfigError, match="minimum weights sum to 1.2"):
        Bounds.build(["a", "b"], min_weight={"a": 0.6, "b": 0.6})
    with pytest.raises(ConfigError, match="unknown domain"):
        Bounds.build(["a", "b"], max_weight={"c": 0.5})
    b = Bounds.build(
        ["a", "b", "c"],
        tokens_available={"a": 100, "b": 1000, "c": 1000},
        token_budget=1000,
        max_epochs=2,
    )
    assert b.upper.tolist() == [0.2, 1.0, 1.0]
    assert b.contains(np.array([[0.2, 0.4, 0.4], [0.3, 0.3, 0.4]])).tolist() == [True, False]
    with pytest.raises(ConfigError, match="maximum weights sum"):
        Bounds.build(["a", "b"], tokens_available={"a": 1, "b": 1}, token_budget=100, max_epochs=1)


def test_rounded_weights_still_form_a_mixture():
    # the notebook's failure: three weights rounded to 6 places summed to 0.999999
    m = Mixture({"a": 0.2000284, "b": 0.5094244, "c": 0.2905472})
    plain = {k: round(v, 6) for k, v in m.items()}
    with pytest.raises(MixtureError, match="must sum to 1"):
        Mixture(plain)
    r = m.rounded(6)
    assert Mixture(r).rounded(6) == r
    assert all(abs(r[k] - m[k]) <= 2e-6 for k in m)
    rng = np.random.default_rng(0)
    for w in rng.dirichlet(np.ones(7), size=200):
        r = Mixture.from_array(list("abcdefg"), w).rounded(4)
        Mixture(r)  # valid at the default tolerance
        assert all(v == round(v, 4) for v in r.values())
