"""End to end under Prefect's test harness: a tiny corpus made here, nano proxies, a choice."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from scipy.stats import spearmanr

from configs.schema import load_config
from mixtures.errors import ConfigError
from mixtures.mixture import Mixture
from mixtures.runtable import RunTable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _config(tmp_path: Path, domains: dict, *extra: str):
    folders = ",".join(f"{k}: {v}" for k, v in domains.items())
    return load_config(
        ROOT / "configs/smoke.yaml",
        overrides=[
            "corpus.source=folders",
            f"corpus.folders={{{folders}}}",
            f"corpus.cache_dir={tmp_path / 'corpus'}",
            "target.domain=delta",
            *extra,
        ],
    )


@pytest.mark.slow
def test_optimize_mixture_end_to_end(harness, tmp_path, tiny_domains):
    from prefect.client.orchestration import get_client

    from flows.optimize import optimize_mixture

    config = _config(tmp_path, tiny_domains)
    exp = tmp_path / "exp"
    summary = optimize_mixture(config, str(exp))

    chosen = Mixture(summary["chosen"]["mixture"], tolerance=1e-4)
    assert set(chosen) == {"alpha", "beta", "gamma"}  # delta is the held-out target
    table = RunTable.read(exp / "runs.parquet")
    assert len(table) == config.sweep.n_runs + 2 and table.domains == ("alpha", "beta", "gamma")
    assert {"target", "val_loss/delta"} <= set(table.metrics)
    quality = pl.read_parquet(exp / "surrogates.parquet")
    assert set(quality["surrogate"]) >= {"ridge", "lightgbm"}
    comparison = pl.read_parquet(exp / "comparison.parquet")
    assert set(comparison["label"]) == {"chosen", "uniform", "natural"}
    assert (comparison["seeds"] == 2).all()
    for name in (
        "report.md",
        "plots/mixtures.png",
        "plots/target_runs.png",
        "plots/predicted_vs_measured.png",
        "config.yaml",
        "summary.json",
    ):
        assert (exp / name).is_file(), name
    assert json.loads((exp / "chosen.json").read_text())["mixture"] == summary["chosen"]["mixture"]

    async def artifact_keys():
        async with get_client() as client:
            return {a.key for a in await client.read_artifacts() if a.key}

    import asyncio

    keys = asyncio.run(artifact_keys())
    for key in ("smoke-runs", "smoke-surrogate-quality", "smoke-target-comparison", "smoke-report"):
        assert key in keys, (key, keys)

    # a rerun recomputes nothing: every record keeps its finish time
    stamps = {p.name: p.stat().st_mtime_ns for p in (exp / "proxy_runs").glob("*.json")}
    again = optimize_mixture(config, str(exp))
    assert again["chosen"] == summary["chosen"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (exp / "proxy_runs").glob("*.json")}


@pytest.mark.slow
def test_bo_rounds_add_proxy_runs(harness, tmp_path, tiny_domains):
    from flows.optimize import optimize_mixture

    config = _config(
        tmp_path,
        tiny_domains,
        "search.method=bo",
        "search.bo_rounds=1",
        "search.bo_batch=2",
        "search.bo_surrogate=gp_average",  # the ensemble of GPs through the whole flow
        "target_run.enabled=false",
    )
    exp = tmp_path / "exp"
    summary = optimize_mixture(config, str(exp))
    table = RunTable.read(exp / "runs.parquet")
    assert len(table) == config.sweep.n_runs + 2 + 2
    saved = json.loads((exp / "bo_round_00.json").read_text())
    proposals = saved["mixtures"]
    assert len(proposals) == 2 and saved["bo_surrogate"] == "gp_average"
    assert len({tuple(sorted(m.items())) for m in proposals}) == 2  # a greedy batch, no repeat
    assert summary["comparison"] == []


@pytest.mark.slow
def test_bo_proxy_rounds_train_the_larger_proxy_with_the_sweep_as_prior(
    harness, tmp_path, tiny_domains
):
    from flows.optimize import optimize_mixture

    config = _config(
        tmp_path,
        tiny_domains,
        "search.method=bo",
        "search.bo_rounds=2",
        "search.bo_batch=1",
        "search.bo_proxy={model: nano, seq_len: 32, batch_size: 8, train_tokens: 16384, "
        "eval_tokens: 1024}",
        "target_run.enabled=false",
    )
    exp = tmp_path / "exp"
    summary = optimize_mixture(config, str(exp))
    sweep = RunTable.read(exp / "runs.parquet")
    rounds = RunTable.read(exp / "runs_bo.parquet")
    assert len(sweep) == config.sweep.n_runs + 2 and len(rounds) == 2  # the scales stay apart
    assert sweep.values("fidelity", "tokens").max() < rounds.values("fidelity", "tokens").min()
    chosen = json.loads((exp / "chosen.json").read_text())
    assert "with a low-fidelity prior" in chosen["surrogate"]
    assert chosen["best_observed"]["run_id"] in rounds.run_ids
    assert set(chosen["mixture"]) <= set(sweep.domains)
    assert sum(chosen["mixture"].values()) == pytest.approx(1.0, abs=1e-5)
    assert "bo_proxy scale" in (exp / "report.md").read_text()
    assert (exp / "plots" / "bo_regret.png").is_file()
    from cli.status import format_status, summarize_experiment

    status = summarize_experiment(exp)
    assert status["best_bo_proxy"]["run_id"] == chosen["best_observed"]["run_id"]
    assert "best at the bo_proxy scale: bo0" in format_status(status)
    # a rerun recomputes nothing and chooses the same mixture
    stamps = {p.name: p.stat().st_mtime_ns for p in (exp / "proxy_runs").glob("*.json")}
    again = optimize_mixture(config, str(exp))
    assert again["chosen"] == summary["chosen"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in (exp / "proxy_runs").glob("*.json")}
    # the same folder without bo_proxy: another config's results, refused by the flow's first
    # task (a run from Python or a deployment is bound to the folder like one from the CLI)
    search = config.search.model_copy(update={"bo_proxy": None})
    plain = config.model_copy(update={"search": search})
    with pytest.raises(ConfigError, match=r"holds results of another config \(search.bo_proxy"):
        optimize_mixture(plain, str(exp))


@pytest.mark.slow
def test_search_method_merge_chooses_from_merged_experts_and_resumes(
    harness, tmp_path, tiny_domains
):
    from flows.optimize import optimize_mixture
    from proxies.runs import RunStore

    config = _config(
        tmp_path,
        tiny_domains,
        "search.method=merge",
        "search.merge={trunk_fraction: 0.5, candidates: 12}",
        "target_run.enabled=false",
    )
    exp = tmp_path / "exp"
    summary = optimize_mixture(config, str(exp))
    sweep = RunTable.read(exp / "runs.parquet")
    merged = RunTable.read(exp / "runs_merged.parquet")
    # the 12 candidates and the sweep's 10 trained mixtures, estimated and marked as merged
    assert len(merged) == 12 + len(sweep) and merged.domains == sweep.domains
    assert set(merged.values("fidelity", "merged")) == {1.0}
    assert set(merged.run_ids).isdisjoint(sweep.run_ids)
    record = json.loads((exp / "merge.json").read_text())
    assert record["agreement"]["runs"] == len(sweep)
    assert -1 <= record["agreement"]["spearman"] <= 1
    assert record["cost_runs"] == pytest.approx(0.5 + 3 * 0.5)  # trunk + 3 experts
    stages = RunStore(exp / "merge_runs").records()
    assert sorted((r["stage"], r["domain"]) for r in stages) == [
        ("expert", "alpha"),
        ("expert", "beta"),
        ("expert", "gamma"),
        ("trunk", None),
    ]
    assert {r["run_id"] for r in stages} == {record["trunk_id"], *record["experts"].values()}
    chosen = json.loads((exp / "chosen.json").read_text())
    assert chosen["surrogate"].endswith("on merged estimates")
    assert chosen["best_observed"]["run_id"] in merged.run_ids
    assert sum(chosen["mixture"].values()) == pytest.approx(1.0, abs=1e-5)
    report = (exp / "report.md").read_text()
    assert "## Merged experts" in report and f"{len(sweep)} trained proxy runs" in report
    # a rerun trains and evaluates nothing again and chooses the same mixture
    files = [*(exp / "merge_runs").iterdir(), exp / "runs_merged.parquet"]
    stamps = {p.name: p.stat().st_mtime_ns for p in files}
    again = optimize_mixture(config, str(exp))
    assert again["chosen"] == summary["chosen"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in files}


@pytest.mark.slow
def test_bo_with_a_merged_prior_proposes_from_the_merged_estimates(harness, tmp_path, tiny_domains):
    from flows.optimize import optimize_mixture

    config = _config(
        tmp_path,
        tiny_domains,
        "search.method=bo",
        "search.bo_rounds=1",
        "search.bo_batch=2",
        "search.merge={trunk_fraction: 0.5, candidates: 8}",
        "target_run.enabled=false",
    )
    exp = tmp_path / "exp"
    optimize_mixture(config, str(exp))
    table = RunTable.read(exp / "runs.parquet")
    assert len(table) == config.sweep.n_runs + 2 + 2  # the rounds' runs are trained runs
    assert len(RunTable.read(exp / "runs_merged.parquet")) == 8 + config.sweep.n_runs + 2
    assert len(json.loads((exp / "bo_round_00.json").read_text())["mixtures"]) == 2
    chosen = json.loads((exp / "chosen.json").read_text())
    assert chosen["best_observed"]["run_id"] in table.run_ids  # chosen on trained runs


@pytest.mark.slow
def test_custom_evaluator_target_through_sweep_bo_and_target_runs(harness, tmp_path, tiny_domains):
    from flows.optimize import optimize_mixture
    from proxies.runs import RunStore

    evaluator = "proxies.evaluators:next_token_error"
    config = _config(
        tmp_path,
        tiny_domains,
        "target.kind=custom",
        f"target.evaluator={evaluator}",
        # trained on (held out, no run would ever predict its tokens); alpha's 8 words, unlike
        # beta's 40 random numbers, leave an error rate a short run can move
        "target.domain=alpha",
        "target.holdout=false",
        "search.method=bo",
        "search.bo_rounds=1",
        "search.bo_batch=1",
        "target_run.seeds=[0]",
    )
    exp = tmp_path / "exp"
    summary = optimize_mixture(config, str(exp))
    records = {r["run_id"]: r for r in RunStore(exp / "proxy_runs").records()}
    table = RunTable.read(exp / "runs.parquet")
    assert table.domains == ("alpha", "beta", "delta", "gamma")
    assert len(table) == config.sweep.n_runs + 2 + 1  # sweep, baselines, one BO round
    for run_id, value in zip(table.run_ids, table.target("target"), strict=True):
        spec = records[run_id]["spec"]
        assert spec["evaluator"] == {"function": evaluator, "params": {}, "domains": ["alpha"]}
        assert value == records[run_id]["result"]["evals"][evaluator]
        assert 0 < value <= 1  # an error rate (1: the run never predicts an alpha token)
        assert value != pytest.approx(records[run_id]["result"]["val_loss"]["alpha"])
    # a real outcome: a proxy that trained on alpha misses fewer of alpha's tokens than one that
    # never saw it (with 8 random words the error cannot go below about 7/8 in any run)
    share = table.weights()[:, table.domains.index("alpha")]
    error = table.target("target")
    trained, unseen = error[share >= 0.1], error[share < 0.005]
    assert len(trained) and len(unseen), (share.round(2), error.round(3))
    assert trained.max() < unseen.min(), (share.round(2), error.round(3))
    assert spearmanr(share, error)[0] < 0
    comparison = pl.read_parquet(exp / "comparison.parquet")
    assert set(comparison["label"]) == {"chosen", "uniform", "natural"}
    assert comparison["mean"].is_between(0, 1).all()
    assert f"**custom** {evaluator} on alpha (custom evaluator" in (exp / "report.md").read_text()
    assert summary["chosen"]["mixture"]
