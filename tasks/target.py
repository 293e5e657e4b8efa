"""Prefect tasks of the target run: specs for chosen vs baselines, their comparison, and handing
the chosen mixture to a served ``target_run`` deployment."""

from __future__ import annotations

from datetime import datetime

import polars as pl
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from configs.specs import target_specs, target_value_fn
from mixtures.io import write_parquet
from proxies.compare import compare_target_runs
from proxies.records import records_to_tables
from proxies.runs import RunSpec, RunStore
from proxies.tokens import TokenCorpus


@task(name="plan-target-runs", cache_policy=NO_CACHE)
def plan_target_runs_task(
    config: ExperimentConfig, plan: Plan, mixtures: dict[str, dict[str, float]]
) -> list[tuple[str, RunSpec]]:
    """One target-scale run per (mixture, seed)."""
    return target_specs(config, plan, TokenCorpus.load(plan.tokens_dir), mixtures)


@task(name="compare-target-runs", cache_policy=NO_CACHE)
def compare_target_runs_task(
    config: ExperimentConfig, plan: Plan, labels: dict[str, str], exp: ExperimentDir
) -> list[dict]:
    """Target metric per mixture (mean, spread over seeds); Parquet + table artifact."""
    records = RunStore(exp.target_store).records(run_ids=set(labels))
    target = target_value_fn(config, plan)
    _, meta = records_to_tables(
        records, train_domains=plan.train_domains, target=target, labels=labels
    )
    write_parquet(meta, exp.target_meta)
    summary = compare_target_runs(meta)
    write_parquet(summary, exp.comparison)
    create_table_artifact(
        key=f"{config.name.replace('_', '-')}-target-comparison",
        table=summary.with_columns(pl.col(pl.Float64).round(4)).to_dicts(),
        description="target at target scale: chosen mixture vs baselines (lower is better)",
    )
    return summary.to_dicts()


def schedule_target_run(
    config: ExperimentConfig,
    chosen_mixture: dict[str, float],
    exp: ExperimentDir,
    *,
    deployment_name: str,
    at: datetime | None = None,
) -> str | None:
    """Create a ``target_run/<deployment_name>`` flow run for the chosen mixture; don't wait.

    Returns the flow run id, or None when that deployment does not exist (the embedded
    default, no server: the caller then runs ``target_run`` inline). ``at`` schedules it
    for later (timezone-aware datetime); None means now.
    """
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    full_name = f"target_run/{deployment_name}"
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return None
    flow_run = run_deployment(
        full_name,
        parameters={
            "config": config.model_dump(mode="json"),
            "mixtures": {"chosen": dict(chosen_mixture)},
            "experiment_dir": str(exp.resolved()),
        },
        scheduled_time=at,
        timeout=0,
        tags=["mixopt", f"experiment:{config.name}", "chosen-mixture"],
    )
    return str(flow_run.id)
