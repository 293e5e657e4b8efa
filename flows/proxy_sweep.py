"""Flow: train a list of proxy (or target) runs, each its own task; finished runs are skipped."""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from tqdm import tqdm

from configs.schema import ExperimentConfig
from proxies.runs import RunSpec, RunStore, read_run_list, write_run_list
from runtime.runners import make_task_runner
from tasks.proxy import run_proxy_task


def submit_runs(runs: list[tuple[str, RunSpec]], tokens_dir: str, store_dir: str) -> dict[str, str]:
    """Submit every (label, spec) whose finished record does not exist yet as a task of the
    current flow (finished runs are counted, not resubmitted); returns run_id -> label."""
    logger = get_run_logger()
    store = RunStore(store_dir)
    todo = [(label, spec) for label, spec in runs if store.finished(spec.run_id) is None]
    done = len(runs) - len(todo)
    if todo:
        # torch and transformers (the model code) are imported here, in the flow's thread, before
        # any worker thread runs a task: transformers' lazy imports race when threads import it
        # at once. A rerun with every run finished imports neither.
        import proxies.train  # noqa: F401
    progress = create_progress_artifact(
        progress=100.0 * done / max(len(runs), 1), description=f"{len(runs)} runs"
    )
    futures = [run_proxy_task.submit(spec, tokens_dir, store_dir, label) for label, spec in todo]
    computed = 0
    bar = tqdm(
        total=len(runs), initial=done, desc="runs", unit="run", disable=not sys.stderr.isatty()
    )
    for future in as_completed(futures):
        out = future.result()
        done += 1
        computed += int(out["computed"])
        bar.update(1)
        update_progress_artifact(progress, progress=100.0 * done / len(runs))
    bar.close()
    logger.info(
        "%d runs: %d trained now, %d finished earlier", len(runs), computed, len(runs) - computed
    )
    return {spec.run_id: label for label, spec in runs}


@flow(name="proxy_sweep", log_prints=True)
def proxy_sweep(run_list: str, tokens_dir: str, store_dir: str) -> dict[str, str]:
    """Train every run of the run-list file (``proxies.runs.write_run_list``); results are files
    under store_dir, finished runs are skipped."""
    return submit_runs(read_run_list(run_list), tokens_dir, store_dir)


def train_runs(
    config: ExperimentConfig,
    runs: list[tuple[str, RunSpec]],
    tokens_dir: str,
    store_dir: str | Path,
    *,
    name: str = "proxy_sweep",
) -> dict[str, str]:
    """``proxy_sweep`` as a subflow on the configured task runner; the runs go to it as a file
    under ``<store_dir>/run_lists`` (small flow parameters: a distributed runner ships them with
    every task)."""
    path = write_run_list(runs, Path(store_dir) / "run_lists")
    flow_ = proxy_sweep.with_options(name=name, task_runner=make_task_runner(config.runner))
    return flow_(str(path), tokens_dir, str(store_dir))
