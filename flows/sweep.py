"""Flow: the corpus and the initial proxy sweep, ending with the run table (nothing chosen)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from configs.schema import ExperimentConfig
from flows.prepare_corpus import prepare_corpus
from flows.proxy_sweep import run_sweep
from tasks.common import experiment_dir
from tasks.report import setup_experiment_task
from tasks.sweep import collect_runs_task, plan_experiment_task, sample_sweep_task


def initial_sweep(config: ExperimentConfig, exp: str) -> tuple[dict, str, dict, dict]:
    setup_experiment_task(config, exp)
    tokens_dir = prepare_corpus(config)
    plan = plan_experiment_task(config, tokens_dir, exp)
    store = str(Path(exp) / "proxy_runs")
    labels = run_sweep(config, sample_sweep_task(config, plan), tokens_dir, store)
    tables = collect_runs_task(config, plan, store, str(Path(exp) / "runs"), labels)
    return plan, store, labels, tables


@flow(name="sweep", flow_run_name="sweep-{config.name}", log_prints=True, persist_result=True)
def sweep(config: ExperimentConfig, experiment_dir_path: str | None = None) -> dict:
    """Corpus and the initial proxy sweep only: the run table, nothing chosen yet."""
    exp = str(experiment_dir(config, experiment_dir_path))
    return initial_sweep(config, exp)[3]
