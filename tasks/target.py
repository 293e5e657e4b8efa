"""Prefect tasks of the target run: specs for chosen vs baselines, and their comparison."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.schema import ExperimentConfig
from mixtures.mixture import Mixture
from proxies.runs import RunSpec, RunStore
from proxies.sweep import compare_target_runs, records_to_tables
from proxies.tokens import TokenCorpus
from tasks.sweep import target_value_fn


@task(name="plan-target-runs", cache_policy=NO_CACHE)
def plan_target_runs_task(
    config: ExperimentConfig, plan: dict, mixtures: dict[str, dict[str, float]]
) -> list[tuple[str, RunSpec]]:
    """One target-scale run per (mixture, seed)."""
    corpus = TokenCorpus.load(plan["tokens_dir"])
    train = plan["train_domains"]
    runs = []
    for name, weights in mixtures.items():
        mixture = Mixture(weights, domains=train, tolerance=1e-4, normalize=True)
        for seed in config.target_run.seeds:
            spec = RunSpec.for_mixture(
                mixture,
                kind="target",
                corpus=corpus,
                train_domains=train,
                eval_domains=plan["eval_domains"],
                train=config.target_run.train,
                seed=seed,
                evaluator=config.target.evaluator_ref(),
            )
            runs.append((name, spec))
    return runs


@task(name="compare-target-runs", cache_policy=NO_CACHE)
def compare_target_runs_task(
    config: ExperimentConfig, plan: dict, store_dir: str, labels: dict[str, str], exp_dir: str
) -> list[dict]:
    """Target metric per mixture (mean, spread over seeds); Parquet + table artifact."""
    records = [r for r in RunStore(store_dir).records() if r["run_id"] in labels]
    fn = target_value_fn(config, plan)
    _, meta = records_to_tables(
        records, train_domains=plan["train_domains"], target=fn, labels=labels
    )
    meta.write_parquet(Path(exp_dir) / "target_runs_meta.parquet")
    summary = compare_target_runs(meta)
    summary.write_parquet(Path(exp_dir) / "comparison.parquet")
    create_table_artifact(
        key=f"{config.name.replace('_', '-')}-target-comparison",
        table=summary.with_columns(pl.col(pl.Float64).round(4)).to_dicts(),
        description="target at target scale: chosen mixture vs baselines (lower is better)",
    )
    return summary.to_dicts()
