"""The search stages on small synthetic run tables with a known best domain."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixtures import search
from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, DataError
from mixtures.runtable import RunTable
from mixtures.search import SearchSpace
from mixtures.surrogates import make_surrogate

DOMAINS = ("a", "b", "c", "d")
T = np.array([-1.5, -0.2, 0.4, 1.0])  # domain a lowers the loss most, d raises it


def law(X: np.ndarray) -> np.ndarray:
    return 2.0 + np.exp(X @ T)


def table(n: int, seed: int, prefix: str = "mix") -> RunTable:
    X = np.random.default_rng(seed).dirichlet(np.ones(len(DOMAINS)), size=n)
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    return RunTable.from_arrays(ids, DOMAINS, X, {"target": law(X)})


SPACE = SearchSpace(Bounds(DOMAINS, np.zeros(4), np.array([0.7, 1.0, 1.0, 1.0])), np.full(4, 0.25))


def gp():
    return make_surrogate("gp_hybrid_linear", max_iter=30)


def test_search_seed_is_the_search_stream_of_the_experiment_seed() -> None:
    assert search.SEARCH_STREAM == 2  # the sweep samples from stream 1: they never share numbers
    expected = np.random.SeedSequence(7, spawn_key=(2, 3)).generate_state(1)[0]
    assert search.search_seed(7, 3) == int(expected)
    assert len({search.search_seed(7, i) for i in range(4)}) == 4
    assert search.search_seed(7) == search.search_seed(7, 0) != search.search_seed(8)


def test_compared_surrogates_add_the_requested_one_once() -> None:
    assert search.compared_surrogates(["ridge", "gp"], "auto") == ["ridge", "gp"]
    assert search.compared_surrogates(["ridge", "gp"], "ensemble") == ["ridge", "gp", "ensemble"]
    assert search.compared_surrogates(["ridge", "gp"], "ridge") == ["ridge", "gp"]


def test_quality_ranks_a_fitting_surrogate_and_leaves_undefined_scores_null() -> None:
    runs = table(20, 0)
    models = {"ridge": make_surrogate("ridge"), "mixing_law": make_surrogate("mixing_law")}
    quality = search.surrogate_quality(models, runs, DOMAINS, folds=5, seed=0)
    ridge, law_fit = quality.rows
    assert ridge["surrogate"] == "ridge" and ridge["runs"] == 20 and ridge["folds"] == 5
    assert ridge["spearman"] > 0.9 and ridge["mae"] < 0.1
    assert law_fit["spearman"] > 0.99  # the table follows the exp law exactly
    oof = quality.oof()
    assert oof["measured"] == runs.target("target").tolist()
    assert [len(v) for v in oof["predicted"].values()] == [20, 20]
    assert search.surrogate_quality(models, runs, DOMAINS, folds=5, seed=0).rows == quality.rows
    assert search.surrogate_quality(models, table(4, 1), DOMAINS, folds=5, seed=0).folds == 4
    # a target every run shares: no ranking, so the correlations are undefined (null)
    X = runs.weights()
    flat = RunTable.from_arrays(runs.run_ids, DOMAINS, X, {"target": np.full(20, 3.0)})
    undefined = search.surrogate_quality(
        {"ridge": make_surrogate("ridge")}, flat, DOMAINS, folds=5, seed=0
    )
    assert undefined.rows[0]["spearman"] is None and undefined.rows[0]["pearson"] is None
    frame = undefined.frame()
    assert frame.schema["spearman"] == frame.schema["mae"] and frame["spearman"].null_count() == 1


def test_pick_surrogate_takes_the_best_defined_spearman_first_listed_on_ties() -> None:
    quality = [
        {"surrogate": "ridge", "spearman": 0.7},
        {"surrogate": "lightgbm", "spearman": None},
        {"surrogate": "gp", "spearman": 0.9},
        {"surrogate": "ensemble", "spearman": 0.9},
        {"surrogate": "loglinear", "spearman": float("nan")},
    ]
    assert search.pick_surrogate("auto", quality) == "gp"
    assert search.pick_surrogate("ridge", quality) == "ridge"
    with pytest.raises(DataError, match="no surrogate has a finite cross-validated Spearman"):
        search.pick_surrogate("auto", [{"surrogate": "ridge", "spearman": None}])


def test_weak_support_warns_when_the_choosing_surrogate_ranks_no_better_than_chance() -> None:
    quality = [
        {"surrogate": "ridge", "runs": 18, "spearman": -0.8},
        {"surrogate": "gp", "runs": 18, "spearman": -0.62},
        {"surrogate": "lightgbm", "runs": 18, "spearman": None},
        {"surrogate": "ensemble", "runs": 18, "spearman": -0.9},
    ]
    picked = search.pick_surrogate("auto", quality)
    assert picked == "gp"  # the best of a bad lot, chosen without a word before
    warning = search.weak_support(picked, quality)
    assert warning is not None
    assert "'gp' has a cross-validated rank correlation (Spearman) of -0.62 on 18 runs" in warning
    assert "not better supported than a guess" in warning
    zero = [{"surrogate": "ridge", "runs": 9, "spearman": 0.0}]
    assert "of 0.00 on 9 runs" in (search.weak_support("ridge", zero) or "")
    assert "of undefined" in (search.weak_support("lightgbm", quality) or "")
    assert (
        search.weak_support("ridge", [{"surrogate": "ridge", "runs": 9, "spearman": 0.4}]) is None
    )
    assert search.weak_support("gp", [{"surrogate": "ridge", "runs": 9, "spearman": -1}]) is None


def test_choose_mixture_leans_on_the_best_domain_within_its_bound() -> None:
    runs = table(24, 0)
    kw = dict(surrogate=make_surrogate("ridge"), label="ridge", seed=3, n_candidates=2000)
    chosen = search.choose_mixture(runs, SPACE, top_k=20, **kw)
    weights = np.array([chosen["mixture"][d] for d in DOMAINS])
    assert weights.sum() == pytest.approx(1.0, abs=1e-5)
    assert weights.argmax() == 0 and weights[0] <= 0.7 + 1e-6 and weights[3] < 0.1
    assert law(weights[None, :])[0] < runs.target("target").min()  # better than every run
    y = runs.target("target")
    assert chosen["best_observed"] == {
        "run_id": runs.run_ids[int(np.argmin(y))],
        "target": float(y.min()),
    }
    assert chosen["surrogate"] == "ridge" and chosen["predicted_std"] is None
    assert search.choose_mixture(runs, SPACE, top_k=20, **kw) == chosen  # same seed, same choice


def test_a_round_is_proposed_once_and_asked_again_from_its_record(tmp_path) -> None:
    runs = table(12, 0)
    record = tmp_path / "bo_round_00.json"
    calls = []

    def optimizer():
        calls.append(1)
        return search.bo_optimizer(runs, SPACE, surrogate=gp(), seed=0, index=1, n_candidates=500)

    kw = dict(round_index=0, batch=3, scale=None, surrogate="gp_hybrid_linear")
    first = search.propose_round(record, optimizer=optimizer, **kw)
    assert len(first) == 3 and calls == [1]
    X = np.array([[w[d] for d in DOMAINS] for w in first])
    assert SPACE.bounds.contains(X).all() and len({tuple(r) for r in X}) == 3
    saved = json.loads(record.read_text())
    assert saved == {
        "round": 0,
        "mixtures": first,
        "bo_proxy": None,
        "bo_surrogate": kw["surrogate"],
    }
    assert search.propose_round(record, optimizer=optimizer, **kw) == first and calls == [1]
    larger = {"model": "small", "train_tokens": 10_000}
    with pytest.raises(DataError, match="bo_round_00.json holds proposals for rounds trained"):
        search.propose_round(record, optimizer=optimizer, **{**kw, "scale": larger})
    del saved["bo_proxy"]  # a record without the key was proposed at the sweep's scale
    record.write_text(json.dumps(saved))
    assert search.propose_round(record, optimizer=optimizer, **kw) == first and calls == [1]


def test_bo_observes_the_sweep_or_with_a_prior_only_the_rounds() -> None:
    sweep, rounds = table(12, 0), table(3, 5, prefix="bo")
    plain = search.bo_optimizer(sweep, SPACE, surrogate=gp(), seed=0, index=1)
    assert plain.n_observations == 12 and plain.low_fidelity is None and plain.n_init == 4
    cheap = make_surrogate("ridge")
    first = search.bo_optimizer(sweep, SPACE, surrogate=gp(), seed=0, index=1, low_fidelity=cheap)
    assert first.n_observations == 0 and first.n_init == 2  # the prior ranks the first runs
    assert first.low_fidelity is not None and first.low_fidelity.domains_ == DOMAINS
    later = search.bo_optimizer(
        sweep, SPACE, surrogate=gp(), seed=0, index=2, low_fidelity=cheap, rounds=rounds
    )
    assert later.n_observations == 3
    with pytest.raises(ConfigError, match="observed only with a low-fidelity prior"):
        search.bo_optimizer(sweep, SPACE, surrogate=gp(), seed=0, index=1, rounds=rounds)


def test_the_choice_at_the_bo_scale_comes_from_the_rounds_runs() -> None:
    sweep, rounds = table(12, 0), table(4, 5, prefix="bo")
    chosen = search.choose_at_bo_scale(
        sweep,
        rounds,
        SPACE,
        surrogate=gp(),
        low_fidelity=make_surrogate("ridge"),
        label="gp with a prior",
        seed=0,
        index=3,
        n_candidates=500,  # the default 5000 take half a minute with a prior on CPU
    )
    assert chosen["best_observed"]["run_id"].startswith("bo")
    assert chosen["surrogate"] == "gp with a prior" and chosen["predicted_std"] > 0
    weights = np.array([chosen["mixture"][d] for d in DOMAINS])
    assert SPACE.bounds.contains(weights[None, :], atol=1e-6).all()
    assert law(weights[None, :])[0] < np.median(rounds.target("target"))


def test_finished_runs_name_what_is_missing_and_where(tmp_path) -> None:
    with pytest.raises(DataError, match=r"no proxy run finished ok: .* \(see runs_meta.parquet\)"):
        search.finished_runs(None, runs="proxy run", statuses=tmp_path / "runs_meta.parquet")
    path = table(1, 0).write(tmp_path / "runs_bo.parquet")
    with pytest.raises(DataError, match="only 1 BO run.* finished ok, 2 needed"):
        search.finished_runs(path, runs="BO run", statuses="runs_bo_meta.parquet", need=2)
    assert len(search.finished_runs(path, runs="BO run", statuses="runs_bo_meta.parquet")) == 1
