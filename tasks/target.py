"""Prefect tasks of the target run: specs for chosen vs baselines, their comparison, and handing
the chosen mixture to a served ``target_run`` deployment."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from configs.specs import target_specs, target_value_fn
from mixtures.io import write_json, write_parquet
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
    """Target metric per mixture (mean, spread over seeds) and each baseline against the chosen
    mixture paired by seed (``proxies.compare``); Parquet + table artifact."""
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
        description=(
            "target at target scale: chosen mixture vs baselines (lower is better), paired by "
            "seed: baseline - chosen per seed, verdict from its 95% CI"
        ),
    )
    return summary.to_dicts()


#: A deployment counts as served when a serve process or worker polled it this recently: the
#: server's own default before it marks a deployment NOT_READY (``PREFECT_SERVER_SERVICES_
#: FOREMAN_DEPLOYMENT_LAST_POLLED_TIMEOUT_SECONDS``); serve polls every 10 s by default.
LIVE_POLL_SECONDS = 60.0


@dataclass(frozen=True)
class TargetHandoff:
    """Where the chosen mixture's target run went: to ``deployment`` (as ``flow_run_id``),
    or ``inline`` into the calling flow run, and why (``reason``)."""

    where: Literal["deployment", "inline"]
    deployment: str
    reason: str
    registered: bool = False
    flow_run_id: str | None = None

    def message(self) -> str:
        if self.where == "deployment":
            return (
                f"target run handed to deployment {self.deployment} as flow run "
                f"{self.flow_run_id}: it trains when that deployment's serve process or worker "
                "picks it up, and writes its comparison to the experiment folder then"
            )
        if not self.registered:
            return f"target run inline: no deployment {self.deployment}"
        return f"target run inline: no live server for deployment {self.deployment} ({self.reason})"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message()}


def why_not_served(client: Any, full_name: str, *, now: datetime, max_age: float) -> str | None:
    """None when deployment ``full_name`` exists and a serve process or worker polled it within
    ``max_age`` seconds of ``now`` (its status READY); else why not. ``client``: Prefect's sync
    client, or anything with its ``read_deployment_by_name``."""
    from prefect.exceptions import ObjectNotFound

    try:
        deployment = client.read_deployment_by_name(full_name)
    except ObjectNotFound:
        return "no such deployment"
    status = getattr(deployment.status, "value", deployment.status)
    last = deployment.last_polled
    if last is None:
        return "registered, but never polled by a serve process or worker"
    age = (now - last).total_seconds()
    if age > max_age or status == "NOT_READY":
        return f"registered, but last polled {age:.0f} s ago (a live one polls every few seconds)"
    return None


def schedule_target_run(
    config: ExperimentConfig,
    chosen_mixture: dict[str, float],
    exp: ExperimentDir,
    *,
    deployment_name: str,
    at: datetime | None = None,
    max_age: float = LIVE_POLL_SECONDS,
) -> TargetHandoff:
    """Create a ``target_run/<deployment_name>`` flow run for the chosen mixture when something
    serves that deployment (``why_not_served``); don't wait. Otherwise create nothing: the
    handoff says ``inline`` and the caller runs ``target_run`` itself, since a run handed to a
    deployment that nobody serves would wait Scheduled forever. ``at`` schedules it for later
    (timezone-aware datetime); None means now.
    """
    from prefect import get_client
    from prefect.deployments import run_deployment

    full_name = f"target_run/{deployment_name}"
    with get_client(sync_client=True) as client:
        why = why_not_served(client, full_name, now=datetime.now(UTC), max_age=max_age)
    if why is not None:
        return TargetHandoff("inline", full_name, why, registered=why != "no such deployment")
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
    return TargetHandoff(
        "deployment", full_name, "served", registered=True, flow_run_id=str(flow_run.id)
    )


@task(name="record-target-handoff", cache_policy=NO_CACHE)
def record_handoff_task(handoff: TargetHandoff, exp: ExperimentDir) -> dict[str, Any]:
    """Say where the target run went (a WARNING unless no deployment of that name exists, the
    plain default) and write it to target_handoff.json for ``mixopt status``."""
    level = logging.WARNING if handoff.registered else logging.INFO
    get_run_logger().log(level, "%s", handoff.message())
    record = handoff.to_json()
    write_json(exp.target_handoff, record)
    return record
