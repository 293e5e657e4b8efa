"""Flow: train the larger model on the chosen mixture and the baselines, several seeds each."""

from __future__ import annotations

from prefect import flow

from configs.experiment import ExperimentDir
from configs.schema import ExperimentConfig
from flows.prepare_corpus import prepare_corpus
from flows.proxy_sweep import train_runs
from runtime.crashes import record_flow_process
from runtime.placement import absolute_path
from tasks.experiment import plan_experiment_task
from tasks.target import compare_target_runs_task, plan_target_runs_task


@flow(
    name="target_run",
    flow_run_name="target-{config.name}",
    log_prints=True,
    persist_result=True,
    on_running=[record_flow_process],
)
def target_run(
    config: ExperimentConfig,
    mixtures: dict[str, dict[str, float]],
    experiment_dir: str | None = None,
    tokens_dir: str | None = None,
) -> list[dict]:
    """Target metric (mean and spread over seeds) of each named mixture at target scale.

    ``mixtures`` maps a label (``chosen``, ``uniform``, ``natural``, or your own) to weights over
    the training domains. Baselines named in ``config.target_run.baselines`` are added.
    ``tokens_dir``: a corpus the caller already built (optimize_mixture); None builds or reuses
    it here, which costs a pass over every domain's documents.
    """
    exp = ExperimentDir.of(config.name, experiment_dir).resolved()
    tokens_dir = absolute_path(tokens_dir or prepare_corpus(config))
    plan = plan_experiment_task(config, tokens_dir, exp)
    named = dict(mixtures)
    for name in config.target_run.baselines:
        named.setdefault(name, plan.baselines[name])
    runs = plan_target_runs_task(config, plan, named)
    labels = train_runs(config, runs, tokens_dir, exp.target_store, name="target_runs")
    return compare_target_runs_task(config, plan, labels, exp)
