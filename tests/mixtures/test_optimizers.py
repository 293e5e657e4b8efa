"""ask/tell optimizers: loud validation, constraints, pool mode, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, DataError
from mixtures.mixture import Mixture
from mixtures.optimizers import BOOptimizer, RegMixOptimizer, make_optimizer

DOMAINS = ("a", "b", "c", "d")
T = np.array([-1.5, 0.0, 0.5, 1.0])


def loss(X: np.ndarray) -> np.ndarray:
    return 2.0 + np.exp(np.atleast_2d(X) @ T)


def values(mixtures: list[Mixture]) -> np.ndarray:
    return loss(np.array([m.to_array(DOMAINS) for m in mixtures]))


def space(bounds: Bounds | None = None, seed: int = 0) -> dict:
    return {
        "domains": DOMAINS,
        "bounds": bounds or Bounds.unbounded(DOMAINS),
        "prior": np.ones(4),
        "seed": seed,
    }


def build(name: str, *, bounds: Bounds | None = None, seed: int = 0, **kw):
    return make_optimizer(name, **space(bounds, seed), **kw)


#: Small candidate sets, few MC samples and short GP fits keep these tests to seconds.
FAST_BO = {
    "n_candidates": 300,
    "n_local": 30,
    "mc_samples": 32,
    "n_init": 4,
    "surrogate_params": {"max_iter": 30},
}


def test_tell_validates_lengths_values_and_origin() -> None:
    opt = build("random")
    asked = opt.ask(3)
    with pytest.raises(DataError, match="3 mixtures but 2 values"):
        opt.tell(asked, [1.0, 2.0])
    with pytest.raises(DataError, match="values must be numbers"):
        opt.tell(asked, ["x", 1.0, 2.0])
    with pytest.raises(DataError, match="value 1 is nan"):
        opt.tell(asked, [1.0, float("nan"), 2.0])
    stranger = Mixture.uniform(DOMAINS)
    with pytest.raises(DataError, match="mixture 0 was not asked"):
        opt.tell([stranger], [1.0])
    other = Mixture({"a": 0.5, "x": 0.5})
    with pytest.raises(DataError, match=r"mixture 0 is over \['a', 'x'\]"):
        opt.tell([other], [1.0])
    with pytest.raises(DataError, match="item 0 is a dict"):
        opt.tell([{"a": 1.0}], [1.0])
    assert opt.n_observations == 0  # nothing half-recorded after the failures
    opt.tell(asked, values(asked))
    with pytest.raises(DataError, match="was not asked"):
        opt.tell(asked[:1], [1.0])  # already told: no longer pending
    opt.observe([stranger], [9.0])  # warm start accepts any valid mixture
    frame = opt.observations
    assert frame.height == 4 and frame["source"].to_list() == ["asked"] * 3 + ["observed"]
    assert list(frame.columns) == ["w:a", "w:b", "w:c", "w:d", "value", "source"]


def test_ask_rejects_bad_n_and_best_needs_data() -> None:
    opt = build("random")
    with pytest.raises(ConfigError, match="n >= 1"):
        opt.ask(0)
    with pytest.raises(DataError, match="no observations"):
        opt.best()
    with pytest.raises(ConfigError, match="unknown optimizer 'grid'"):
        build("grid")
    with pytest.raises(ConfigError, match="bo needs a GP surrogate"):
        build("bo", surrogate="ridge")


def test_bo_proposals_lie_on_the_simplex_inside_bounds() -> None:
    bounds = Bounds(DOMAINS, np.array([0.05, 0.0, 0.1, 0.0]), np.array([0.4, 0.6, 0.7, 0.3]))
    opt = build("bo", bounds=bounds, **FAST_BO)
    for n in (4, 3, 3):
        asked = opt.ask(n)
        X = np.array([m.to_array(DOMAINS) for m in asked])
        assert len({tuple(r) for r in X}) == n
        np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-9)
        assert bounds.contains(X).all()
        opt.tell(asked, loss(X))
    best, value = opt.best()
    mix, pred, std = opt.recommend()
    assert bounds.contains(mix.to_array(DOMAINS)[None, :]).all() and std is not None
    assert value == pytest.approx(loss(best.to_array(DOMAINS))[0])


def test_bo_improves_on_its_initial_design() -> None:
    opt = build("bo", seed=1, **FAST_BO)
    first = opt.ask(4)
    opt.tell(first, values(first))
    init_best = opt.best()[1]
    for _ in range(3):
        asked = opt.ask(2)
        opt.tell(asked, values(asked))
    assert opt.best()[1] < init_best
    assert opt.best()[0]["a"] > 0.3  # the law rewards weight on 'a'


def test_bo_proposals_do_not_depend_on_torch_global_rng() -> None:
    """What a process ran before must not change BO's proposals (a replay repeat differed
    between one and two worker processes): asking neither reads nor advances torch's global
    RNG."""
    import torch

    proposals = []
    for global_seed in (1, 2):
        opt = build("bo", seed=3, **FAST_BO)
        first = opt.ask(6)
        opt.tell(first, values(first))
        torch.manual_seed(global_seed)
        state = torch.get_rng_state()
        asked = opt.ask(2)
        assert torch.equal(torch.get_rng_state(), state)
        proposals.append([m.to_array(DOMAINS).tolist() for m in asked])
    assert proposals[0] == proposals[1]


def test_mixture_acquisition_is_the_weighted_mean_of_the_members_ei() -> None:
    """One member gives its log-EI bit for bit; two give log(sum_j w_j EI_j), each member
    reading its own block of features ('sqrt' and 'x+sqrt' here) of the same candidates."""
    import torch

    from mixtures.optimizers.bo import MixtureAcquisition
    from mixtures.surrogates import make_surrogate

    opt = build("bo", seed=2, **FAST_BO)
    first = opt.ask(8)
    opt.tell(first, values(first))
    X, y = opt.observed_arrays()
    gps = [make_surrogate(n, random_state=0, max_iter=30).fit(X, y) for n in ("gp", "gp_hybrid")]
    cand = np.random.default_rng(0).dirichlet(np.ones(4), size=50)
    feats = [torch.as_tensor(gp.feature_matrix(cand)).unsqueeze(1) for gp in gps]  # (50, 1, d_j)
    acqs = [opt._acquisition(gp) for gp in gps]
    alone = [a(f) for a, f in zip(acqs, feats, strict=True)]
    assert not torch.allclose(alone[0], alone[1])  # the members differ, so the mean is a test
    widths = [f.shape[-1] for f in feats]
    assert widths == [4, 8]
    with torch.no_grad():
        one = MixtureAcquisition(acqs[:1], widths[:1], [1.0])(feats[0])
        two = MixtureAcquisition(acqs, widths, [0.25, 0.75])(torch.cat(feats, dim=-1))
        expected = torch.log(0.25 * alone[0].exp() + 0.75 * alone[1].exp())
    assert torch.equal(one, alone[0].detach())
    torch.testing.assert_close(two, expected.detach())


def test_bo_with_an_average_of_gps_proposes_feasible_distinct_improving_batches() -> None:
    bounds = Bounds(DOMAINS, np.zeros(4), np.array([0.8, 0.6, 0.7, 0.6]))
    fast = {k: v for k, v in FAST_BO.items() if k != "surrogate_params"}  # members: defaults
    opt = build("bo", bounds=bounds, seed=1, surrogate="gp_average", **fast)
    first = opt.ask(4)
    opt.tell(first, values(first))
    init_best = opt.best()[1]
    for _ in range(3):
        asked = opt.ask(3)  # greedy batches: pending points reach both members
        X = np.array([m.to_array(DOMAINS) for m in asked])
        assert len({tuple(r) for r in X}) == 3 and bounds.contains(X).all()
        np.testing.assert_allclose(X.sum(axis=1), 1.0, atol=1e-9)
        opt.tell(asked, loss(X))
    assert opt.best()[1] < init_best
    mix, pred, std = opt.recommend()
    assert std is not None and bounds.contains(mix.to_array(DOMAINS)[None, :]).all()


def test_bo_refuses_surrogates_it_cannot_acquire_with() -> None:
    with pytest.raises(ConfigError, match="bo needs a GP surrogate .* got EnsembleSurrogate"):
        build("bo", surrogate="ensemble")  # gp + mixing_law: the law has no posterior
    with pytest.raises(ConfigError, match="bo needs a GP surrogate .* got RidgeSurrogate"):
        build("bo", surrogate="ridge")
    with pytest.raises(ConfigError, match="BOOptimizer needs a surrogate object .* got str"):
        BOOptimizer(surrogate="gp", **space())  # type: ignore[arg-type]  # a name, not an object
    with pytest.raises(ConfigError, match="RegMixOptimizer needs a surrogate object .* got str"):
        RegMixOptimizer(surrogate="ridge", **space())  # type: ignore[arg-type]


def test_regmix_averages_top_k_and_respects_bounds() -> None:
    bounds = Bounds(DOMAINS, np.zeros(4), np.array([0.5, 1.0, 1.0, 1.0]))
    opt = build("regmix", bounds=bounds, surrogate="ridge", n_init=8, n_candidates=500)
    init = opt.ask(8)
    opt.tell(init, values(init))
    asked = opt.ask(3)
    X = np.array([m.to_array(DOMAINS) for m in asked])
    assert len({tuple(r) for r in X}) == 3 and bounds.contains(X).all()
    assert X[0, 0] > 0.35  # the top-k mean leans to 'a', up to its cap of 0.5
    mix, pred, std = opt.recommend()
    assert std is None and mix["a"] <= 0.5 + 1e-9


@pytest.mark.parametrize("name", ["random", "regmix", "bo"])
def test_pool_mode_never_proposes_twice(name) -> None:
    pool = np.random.default_rng(0).dirichlet(np.ones(4), size=20)
    extra = {"random": {}, "regmix": {"surrogate": "ridge", "n_init": 4}, "bo": FAST_BO}[name]
    opt = build(name, pool=pool, **extra)
    seen: list[int] = []
    for n in (4, 4, 4):
        asked = opt.ask(n)
        idx = [opt.pool_index(m) for m in asked]
        seen.extend(idx)
        opt.tell(asked, loss(pool[idx]))
    assert len(set(seen)) == 12
    with pytest.raises(ConfigError, match="only 8 unused pool members"):
        opt.ask(9)


def test_same_seed_same_proposals() -> None:
    def run(seed: int) -> list[Mixture]:
        opt = build("bo", seed=seed, **FAST_BO)
        a = opt.ask(4)
        opt.tell(a, values(a))
        return a + opt.ask(2)

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_resume_from_observations() -> None:
    opt = build("regmix", surrogate="ridge", n_init=4, n_candidates=200)
    a = opt.ask(6)
    opt.tell(a, values(a))
    again = build("regmix", surrogate="ridge", n_init=4, n_candidates=200)
    frame = opt.observations
    rows = frame.select([f"w:{d}" for d in DOMAINS]).to_numpy()
    again.observe([Mixture.from_array(DOMAINS, r) for r in rows], frame["value"].to_list())
    assert again.best() == opt.best()
    assert again.recommend()[0] == opt.recommend()[0]
