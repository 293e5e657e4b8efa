"""Flow: the main job. Corpus -> proxy sweep (-> merged experts) -> surrogates -> chosen mixture
-> target runs."""

from __future__ import annotations

from prefect import flow, get_run_logger

from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from flows.proxy_sweep import train_runs
from flows.sweep import initial_sweep
from flows.target_run import target_run
from runtime.crashes import record_flow_process
from tasks.export import export_mixture_task
from tasks.merge import merged_estimates_task, train_experts_task
from tasks.proxy import collect_runs_task
from tasks.report import report_task
from tasks.surrogate import (
    choose_at_bo_scale_task,
    choose_mixture_task,
    pick_surrogate,
    propose_bo_task,
    surrogate_quality_task,
)
from tasks.target import record_handoff_task, schedule_target_run


@flow(
    name="optimize_mixture",
    flow_run_name="optimize-{config.name}",
    log_prints=True,
    persist_result=True,
    on_running=[record_flow_process],
)
def optimize_mixture(config: ExperimentConfig, experiment_dir: str | None = None) -> dict:
    """Find the mixture that minimises the configured target; re-running skips finished work."""
    exp = ExperimentDir.of(config.name, experiment_dir).resolved()
    plan, labels, tables = initial_sweep(config, exp)
    merged = None
    if config.search.merge is not None:
        train_experts_task(config, plan, exp)
        merged = merged_estimates_task(config, plan, exp, tables.table)
    if config.search.bo_proxy is not None:
        quality, chosen = _bo_at_larger_scale(config, plan, tables.table, exp)
    elif config.search.method == "merge":
        quality = surrogate_quality_task(config, plan, merged, exp)
        chosen = choose_mixture_task(config, plan, merged, exp, quality)
    else:
        if config.search.method == "bo":
            for round_index in range(config.search.bo_rounds):
                proposals = propose_bo_task(
                    config, plan, tables.table, exp, round_index, merged=merged
                )
                labels |= train_runs(config, proposals, plan.tokens_dir, exp.proxy_store)
                tables = collect_runs_task(config, plan, exp.proxy_store, exp, "runs", labels)
        quality = surrogate_quality_task(config, plan, tables.table, exp)
        chosen = choose_mixture_task(config, plan, tables.table, exp, quality)
    export_mixture_task(config, plan, chosen, exp)
    comparison, handoff = [], None
    if config.target_run.enabled:
        # Hand the chosen mixture to a target_run deployment that something serves; otherwise
        # (the embedded default, or a deployment whose server is gone) run it here.
        scheduled = schedule_target_run(
            config,
            chosen["mixture"],
            exp,
            deployment_name=config.target_run.deployment or config.name,
        )
        handoff = record_handoff_task(scheduled, exp)
        if scheduled.where == "inline":
            comparison = target_run(
                config, {"chosen": chosen["mixture"]}, str(exp), plan.tokens_dir
            )
    summary = report_task(config, plan, exp, quality, chosen, comparison, handoff)
    get_run_logger().info("chosen mixture: %s", chosen["mixture"])
    return summary


def _bo_at_larger_scale(
    config: ExperimentConfig, plan: Plan, sweep_table: str | None, exp: ExperimentDir
) -> tuple[list[dict], dict]:
    """``search.bo_proxy``: the sweep's surrogate (cross-validated as usual) becomes the GP's
    low-fidelity prior; the BO rounds train ``bo_proxy`` and go to runs_bo.parquet; the choice
    is the GP's on those runs."""
    quality = surrogate_quality_task(config, plan, sweep_table, exp)
    prior = pick_surrogate(config.search.surrogate, quality)
    labels: dict[str, str] = {}
    bo_table = None
    for round_index in range(config.search.bo_rounds):
        proposals = propose_bo_task(config, plan, sweep_table, exp, round_index, bo_table, prior)
        labels |= train_runs(config, proposals, plan.tokens_dir, exp.proxy_store)
        bo_table = collect_runs_task(config, plan, exp.proxy_store, exp, "runs_bo", labels).table
    chosen = choose_at_bo_scale_task(config, plan, sweep_table, bo_table, exp, prior)
    return quality, chosen
