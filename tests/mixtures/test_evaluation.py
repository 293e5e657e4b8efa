"""Cross-validation over train sizes and pool replay, on synthetic runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from mixtures.errors import ConfigError, DataError
from mixtures.evaluation import (
    cross_validate,
    kfold_predictions,
    plot_regret,
    random_runs_to_top,
    random_start_floor,
    replay,
    score,
)
from mixtures.optimizers.random import RandomOptimizer
from mixtures.optimizers.regmix import RegMixOptimizer
from mixtures.surrogates import Surrogate, make_surrogate
from mixtures.surrogates.base import Features

DOMAINS = ("a", "b", "c", "d")


def pool(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).dirichlet(np.full(4, 0.8), size=n)
    return X, 2.0 + np.exp(X @ np.array([-1.5, 0.0, 0.5, 1.0]))


def test_cross_validate_scores_each_size_on_held_out_runs() -> None:
    X, y = pool()
    out = cross_validate(X, y, surrogate="ridge", train_sizes=[10, 30], repeats=3, seed=0)
    assert [(s["size"], s["test"], s["repeats"]) for s in out["summary"]] == [
        (10, "holdout", 3),
        (30, "holdout", 3),
    ]
    big = out["summary"][1]
    assert big["spearman_mean"] > 0.95 and big["mae_mean"] < 0.15  # losses span 2.3-4.7
    again = cross_validate(X, y, surrogate="ridge", train_sizes=[10, 30], repeats=3, seed=0)
    assert again["rows"][0]["spearman"] == out["rows"][0]["spearman"]


def test_cross_validate_on_test_sets_fits_the_full_size_once() -> None:
    X, y = pool()
    Xt, yt = pool(30, seed=1)
    out = cross_validate(
        X, y, surrogate="ridge", train_sizes=[60], repeats=5, seed=0, tests={"t": (Xt, yt)}
    )
    assert len(out["rows"]) == 1 and out["rows"][0]["test"] == "t"


def test_cross_validate_rejects_bad_sizes() -> None:
    X, y = pool(20)
    with pytest.raises(ConfigError, match=r"train sizes \[18\] out of range"):
        cross_validate(X, y, surrogate="ridge", train_sizes=[18], repeats=1, seed=0)
    with pytest.raises(ConfigError, match="unknown surrogate"):
        cross_validate(X, y, surrogate="nope", train_sizes=[5], repeats=1, seed=0)


def test_score_marks_constant_predictions_and_targets() -> None:
    s = score(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0]))
    assert s["spearman"] is None and s["pearson"] is None and s["mae"] == pytest.approx(3.0)
    s = score(np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 4.0]))
    assert s["spearman"] is None and s["pearson"] is None and s["mae"] == pytest.approx(1.0)
    s = score(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    assert s == {"spearman": -1.0, "pearson": pytest.approx(-1.0), "mae": pytest.approx(4 / 3)}


@dataclass(kw_only=True, eq=False, repr=False)
class TrainingMean(Surrogate):
    """Predicts the mean target of the runs it was fitted on."""

    features: Features = "x"
    log_target: bool = False
    random_state: int | None = None

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        self.mean_ = float(z.mean())

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, None]:
        return np.full(F.shape[0], self.mean_), None


def test_kfold_predicts_each_run_from_the_other_folds_only() -> None:
    X, y = pool(10)
    model = TrainingMean()
    pred = kfold_predictions(model, X, y, folds=3, seed=4)
    order = np.random.default_rng(4).permutation(10)
    for k in range(3):
        test = order[k::3]
        np.testing.assert_allclose(pred[test], np.delete(y, test).mean())
    assert not hasattr(model, "mean_")  # fresh copies were fitted, not the model given
    with pytest.raises(DataError, match="10 runs cannot be split into 11 folds"):
        kfold_predictions(model, X, y, folds=11, seed=0)


def test_replay_counts_runs_to_top_and_regret(tmp_path) -> None:
    X, y = pool(100)
    rnd = replay(X, y, domains=DOMAINS, optimizer="random", budget=40, repeats=4, seed=0, batch=5)
    assert rnd["top_runs"] == 1 and len(rnd["per_repeat"]) == 4
    best = int(np.argmin(y))
    stopped = 0
    for r in rnd["per_repeat"]:
        order = r["order"]
        assert len(order) == len(set(order))
        if best in order:  # the repeat ends with the batch that ran the pool's best
            assert best in order[-5:] and len(order) <= 40
            stopped += len(order) < 40
        else:
            assert len(order) == 40
        assert r["runs_to_top"] == (order.index(best) + 1 if best in order else None)
        assert r["regret"]["16"] == pytest.approx(y[order[:16]].min() - y.min())
        assert len(r["curve"]) == 40
        assert r["curve"][-1] == pytest.approx(y[order].min() - y.min())
    assert stopped >= 1  # seed 0: at least one repeat found the best early and stopped
    model = replay(
        X,
        y,
        domains=DOMAINS,
        optimizer="regmix",
        budget=30,
        repeats=4,
        seed=0,
        batch=None,
        top_fraction=0.05,
        optimizer_params={"surrogate": "ridge", "n_init": 10},
    )
    assert model["summary"]["runs_to_top_median"] <= 12  # one shot right after 10 random runs
    # against random: 5 top runs of 100 -> 101 / 6 runs on average; 10 random runs first, so
    # at best the oracle's median, 11 (P(10 draws miss all 5) = 0.58)
    s, med = model["summary"], model["summary"]["runs_to_top_median"]
    assert model["random_start"] == 10
    assert s["random_expected_mean"] == pytest.approx(101 / 6)
    assert s["saving"] == pytest.approx(101 / 6 / med)
    assert s["saving_ceiling"] == pytest.approx(101 / 6 / 11)
    assert rnd["random_start"] == 40 and rnd["summary"]["saving_ceiling"] == pytest.approx(
        (101 / 2) / rnd["summary"]["random_expected_median"]
    )  # random search: no model, its ceiling is random's mean over its median
    png = plot_regret(model, tmp_path / "regret.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


class FirstFree(RandomOptimizer):
    """Always the lowest-numbered unused pool members (pool mode lists them in order)."""

    def _choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        return np.arange(n)


def test_replay_takes_an_optimizer_class_with_its_params() -> None:
    X, y = pool(60)
    kw = dict(domains=DOMAINS, budget=20, repeats=3, seed=2, batch=None)
    by_name = replay(
        X, y, optimizer="regmix", optimizer_params={"surrogate": "ridge", "n_init": 8}, **kw
    )
    params = {"surrogate": make_surrogate("ridge"), "n_init": 8}  # a class takes objects
    by_class = replay(X, y, optimizer=RegMixOptimizer, optimizer_params=params, **kw)
    assert by_class["optimizer"] == "RegMixOptimizer"
    assert [r["order"] for r in by_class["per_repeat"]] == [
        r["order"] for r in by_name["per_repeat"]
    ]
    first = replay(X, y, domains=DOMAINS, optimizer=FirstFree, budget=12, repeats=2, seed=0)
    for r in first["per_repeat"]:
        assert r["order"] == list(range(len(r["order"])))


def test_replay_validates_budget() -> None:
    X, y = pool(10)
    with pytest.raises(ConfigError, match="budget must be between 1 and the pool size 10"):
        replay(X, y, domains=DOMAINS, optimizer="random", budget=11, repeats=1, seed=0)


def test_workers_change_nothing_but_the_processes() -> None:
    """Repeats and fits in 2 processes give exactly the results of one process."""
    X, y = pool(80)
    kwargs = dict(domains=DOMAINS, optimizer="random", budget=30, repeats=4, seed=3, batch=4)
    one, two = replay(X, y, **kwargs), replay(X, y, workers=2, **kwargs)
    assert [r["order"] for r in two["per_repeat"]] == [r["order"] for r in one["per_repeat"]]
    assert two["summary"] == one["summary"]
    cv = dict(surrogate="ridge", train_sizes=[10, 40], repeats=3, seed=1)
    assert cross_validate(X, y, workers=2, **cv)["rows"] == [
        {**r, "fit_seconds": pytest.approx(r["fit_seconds"], abs=10)}
        for r in cross_validate(X, y, **cv)["rows"]
    ]


def test_replay_rejects_unknown_optimizer_and_bad_workers() -> None:
    X, y = pool(20)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        replay(X, y, domains=DOMAINS, optimizer="nope", budget=5, repeats=2, seed=0, workers=2)
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        replay(X, y, domains=DOMAINS, optimizer="random", budget=5, repeats=2, seed=0, workers=0)


def _simulate(pool: int, top: int, n_random: int | None, draws: int = 8000) -> np.ndarray:
    """Runs to the first top run: uniform draws without replacement; with ``n_random``, an
    oracle takes a top run right after that many draws (if they all missed)."""
    rng = np.random.default_rng(0)
    out = np.empty(draws)
    for i in range(draws):
        first = int(np.flatnonzero(rng.permutation(pool) < top)[0]) + 1
        out[i] = first if n_random is None else min(first, n_random + 1)
    return out


@pytest.mark.parametrize(("n", "top"), [(64, 1), (127, 2), (768, 8)])
def test_random_runs_to_top_matches_simulation(n: int, top: int) -> None:
    mean, median = random_runs_to_top(n, top)
    sim = _simulate(n, top, None)
    assert mean == pytest.approx(sim.mean(), rel=0.03)
    assert median == pytest.approx(np.median(sim), abs=1)
    with pytest.raises(ConfigError, match="top must be between 1 and the pool size"):
        random_runs_to_top(n, 0)


@pytest.mark.parametrize(
    ("n", "top", "n_random", "floor"),
    [(64, 1, 4, 5.0), (127, 2, 4, 5.0), (768, 8, 32, 33.0), (64, 1, 32, 32.0), (10, 5, 4, 1.0)],
)
def test_random_start_floor_is_the_oracle_median(
    n: int, top: int, n_random: int, floor: float
) -> None:
    assert random_start_floor(n, top, n_random) == floor
    assert np.median(_simulate(n, top, n_random)) == pytest.approx(floor, abs=1)
