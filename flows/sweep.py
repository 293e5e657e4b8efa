"""Flow: the corpus and the initial proxy sweep, ending with the run table (nothing chosen)."""

from __future__ import annotations

from prefect import flow

from configs.experiment import ExperimentDir, Plan, RunTables
from configs.schema import ExperimentConfig
from flows.prepare_corpus import prepare_corpus
from flows.proxy_sweep import train_runs
from runtime.crashes import record_flow_process
from tasks.experiment import plan_experiment_task, setup_experiment_task
from tasks.proxy import collect_runs_task, sample_sweep_task


def initial_sweep(
    config: ExperimentConfig, exp: ExperimentDir
) -> tuple[Plan, dict[str, str], RunTables]:
    """Set up the folder, build the corpus, plan, train the sweep: (plan, labels, tables)."""
    setup_experiment_task(config, exp)
    tokens_dir = prepare_corpus(config)
    plan = plan_experiment_task(config, tokens_dir, exp)
    runs = sample_sweep_task(config, plan)
    labels = train_runs(config, runs, tokens_dir, exp.proxy_store)
    tables = collect_runs_task(config, plan, exp.proxy_store, exp, "runs", labels)
    return plan, labels, tables


@flow(
    name="sweep",
    flow_run_name="sweep-{config.name}",
    log_prints=True,
    persist_result=True,
    on_running=[record_flow_process],
)
def sweep(config: ExperimentConfig, experiment_dir: str | None = None) -> RunTables:
    """Corpus and the initial proxy sweep only: the run table, nothing chosen yet."""
    return initial_sweep(config, ExperimentDir.of(config.name, experiment_dir).resolved())[2]
