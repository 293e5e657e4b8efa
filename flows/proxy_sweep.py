"""Flow: train a list of proxy (or target) runs, each its own task or, with ``train.pack``, in
packs of runs trained at once; finished runs are skipped, and runs that another process is
training (another sweep on the same folder) are left to it and waited for at the end."""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed
from tqdm import tqdm

from configs.schema import ExperimentConfig, RunnerConfig
from proxies.runs import (
    RunSpec,
    RunStore,
    finished_record,
    pack_size,
    plan_packs,
    read_run_list,
    write_run_list,
)
from proxies.tokens import TokenCorpus
from runtime.crashes import record_flow_process
from runtime.placement import absolute_path, submission
from runtime.runners import make_task_runner
from tasks.proxy import run_pack_task, run_proxy_task


def submit_runs(
    runs: list[tuple[str, RunSpec]],
    tokens_dir: str,
    store_dir: str,
    runner: RunnerConfig | None = None,
) -> dict[str, str]:
    """Submit every (label, spec) whose finished record does not exist yet as a task of the
    current flow (finished runs are counted, not resubmitted); returns run_id -> label.
    ``runner``: the flow's task runner's config, which places each task on its device
    (``runtime.placement``); None: every run on its ``train.device``.

    Two passes: the first trains every run no other process holds (``proxies.leases``) and
    defers the others, so that two sweeps on one folder split the runs between them instead of
    one trailing the other; the second waits for the deferred runs' records (and trains those
    whose holder died)."""
    logger = get_run_logger()
    store, corpus = RunStore(store_dir), TokenCorpus.load(tokens_dir)
    todo = [(label, spec) for label, spec in runs if finished_record(spec, store, corpus) is None]
    done = len(runs) - len(todo)
    if todo:
        # torch and transformers (the model code) are imported here, in the flow's thread, before
        # any worker thread runs a task: transformers' lazy imports race when threads import it
        # at once. A rerun with every run finished imports neither.
        import proxies.train  # noqa: F401
    progress = _Progress(len(runs), done)
    left = progress.collect(_submit(todo, tokens_dir, store_dir, runner, wait=False))
    if left:
        logger.info("%d runs are being trained by another process: waiting for them", len(left))
        by_id = {spec.run_id: (label, spec) for label, spec in todo}
        waited = [by_id[run_id] for run_id in left]
        progress.collect(_submit(waited, tokens_dir, store_dir, runner, wait=True))
    progress.close()
    logger.info(
        "%d runs: %d trained now, %d finished earlier%s",
        len(runs),
        progress.trained,
        done,
        f", {progress.elsewhere} by another process" if progress.elsewhere else "",
    )
    return {spec.run_id: label for label, spec in runs}


class _Progress:
    """The sweep's progress: a Prefect progress artifact, a bar on a terminal, and how many
    runs were trained here and how many were finished by another process meanwhile."""

    def __init__(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        self.trained = self.elsewhere = 0
        self.artifact = create_progress_artifact(
            progress=100.0 * done / max(total, 1), description=f"{total} runs"
        )
        self.bar = tqdm(
            total=total, initial=done, desc="runs", unit="run", disable=not sys.stderr.isatty()
        )

    def collect(self, futures: list) -> list[str]:
        """Count the tasks' runs as the tasks complete; returns the run ids they deferred."""
        deferred = []
        for future in as_completed(futures):
            result = future.result()
            for out in result if isinstance(result, list) else [result]:
                if out["record"] is None:
                    deferred.append(out["run_id"])
                    continue
                self.done += 1
                if out["computed"]:
                    self.trained += 1
                else:
                    self.elsewhere += 1
                self.bar.update(1)
            update_progress_artifact(self.artifact, progress=100.0 * self.done / self.total)
        return deferred

    def close(self) -> None:
        self.bar.close()


def _submit(
    todo: list[tuple[str, RunSpec]],
    tokens_dir: str,
    store_dir: str,
    runner: RunnerConfig | None,
    *,
    wait: bool,
) -> list:
    """Submit the (label, spec) runs as training tasks, in packs where ``train.pack`` allows;
    returns their futures. ``wait``: whether a task waits for a run another process holds."""
    futures: list = []
    if not todo:
        return futures
    packs = plan_packs([spec for _, spec in todo], _pack_size(todo, runner))
    with submission(runner) as devices:
        for members in packs:
            if len(members) == 1:
                label, spec = todo[members[0]]
                futures.append(
                    run_proxy_task.submit(spec, tokens_dir, store_dir, label, devices, wait=wait)
                )
                continue
            specs = [todo[i][1] for i in members]
            futures.append(
                run_pack_task.submit(
                    specs,
                    tokens_dir,
                    store_dir,
                    [todo[i][0] for i in members],
                    devices,
                    size=len(members),
                    first=specs[0].run_id,
                    wait=wait,
                )
            )
    return futures


def _pack_size(todo: list[tuple[str, RunSpec]], runner: RunnerConfig | None) -> int:
    """Runs per pack (``proxies.runs.pack_size``) for the runs to train on ``runner``: its
    parallel workers, and the device type ``auto`` resolves to (cuda when the runner offers
    GPUs or this machine has one)."""
    train = todo[0][1].train
    workers = runner.max_workers if runner is not None else 1
    if train.device != "auto":
        device_type = train.device
    elif runner is not None and (runner.devices or runner.gpus):
        device_type = "cuda"
    else:
        import torch

        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return pack_size(train, runs=len(todo), workers=workers, device_type=device_type)


@flow(name="proxy_sweep", log_prints=True, on_running=[record_flow_process])
def proxy_sweep(
    run_list: str, tokens_dir: str, store_dir: str, runner: RunnerConfig | None = None
) -> dict[str, str]:
    """Train every run of the run-list file (``proxies.runs.write_run_list``); results are files
    under store_dir, finished runs are skipped. Relative paths are taken from this process's
    working directory; tasks get them absolute. ``runner``: see ``submit_runs``."""
    tokens_dir, store_dir = absolute_path(tokens_dir), absolute_path(store_dir)
    return submit_runs(read_run_list(absolute_path(run_list)), tokens_dir, store_dir, runner)


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
    store_dir = absolute_path(store_dir)
    path = write_run_list(runs, Path(store_dir) / "run_lists")
    flow_ = proxy_sweep.with_options(name=name, task_runner=make_task_runner(config.runner))
    return flow_(str(path), absolute_path(tokens_dir), store_dir, config.runner)
