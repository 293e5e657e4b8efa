"""Prefect's overhead per proxy run, on the thread, Dask and Ray task runners.

Every proxy run is a Prefect task; the engine must cost under 1 % of a 30 s proxy run. Each
task here is the real ``run_proxy_task`` on a run whose finished record already exists, so the
library work (load the corpus, find the record) is tiny and the rest is the engine. The same
library calls made directly give the baseline.

For each runner, sweeps of two sizes (``small``, ``large``) are timed end to end as one flow run
that submits the task for every run, against a Prefect server of its own; the difference gives
the marginal cost per task, the remainder the fixed cost per sweep (flow run, cluster start,
spread over a 32-run sweep in the table).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from benchmarks.suite import Case, Column, Params, col, one_table
from benchmarks.trainer_throughput import smoke_corpus

#: The proxy run length the target refers to: overhead must stay under 1 % of it.
PROXY_SECONDS = 30.0
#: Sweep size over which the fixed cost per sweep is spread in the table.
REFERENCE_SWEEP = 32


class OverheadParams(Params):
    """Prefect's cost per proxy task and per sweep (target: <= 1 % of a 30 s run)."""

    smoke: ClassVar[Mapping[str, Any]] = {"small": 1, "large": 3, "runners": ["thread"]}

    small: int = Field(5, ge=1)
    large: int = Field(45, ge=2)
    """Tasks in the two sweeps; their difference gives the per-task cost."""
    runners: list[Literal["thread", "dask", "ray"]] = ["thread", "dask", "ray"]
    workers: int = Field(2, ge=1)
    """Workers of the Dask and Ray runners (the thread runner uses one)."""


def finished_runs(corpus: Any, store_dir: Path, n: int, offset: int) -> list[tuple[str, Any]]:
    """``n`` distinct proxy runs, each with a finished record in ``store_dir`` (nothing trains)."""
    from mixtures.mixture import Mixture
    from proxies.runs import RunSpec, RunStore
    from proxies.train import TrainConfig, TrainResult

    domains = list(corpus.domains)
    train = TrainConfig(model="nano", seq_len=32, batch_size=8, train_tokens=8192)
    store = RunStore(store_dir)
    runs = []
    for i in range(n):
        spec = RunSpec.for_mixture(
            Mixture.uniform(domains),
            kind="proxy",
            corpus=corpus,
            train_domains=domains,
            eval_domains=domains,
            train=train,
            seed=offset + i,  # distinct run ids
        )
        result = TrainResult(status="ok", val_loss={d: 1.0 for d in domains})
        record = {"run_id": spec.run_id, "spec": spec.model_dump(mode="json")}
        store.write({**record, "result": result.to_json()})
        runs.append((f"bench{i:03d}", spec))
    return runs


def direct(runs: list[tuple[str, Any]], tokens_dir: str, store_dir: Path) -> float:
    """Seconds for the library calls a task makes, without Prefect."""
    from proxies.runs import RunStore, execute_run
    from proxies.tokens import TokenCorpus
    from tasks.common import git_sha

    start = time.perf_counter()
    for label, spec in runs:
        corpus = TokenCorpus.load(tokens_dir)
        execute_run(spec, corpus, RunStore(store_dir), extra={"label": label, "git_sha": git_sha()})
    return time.perf_counter() - start


def through_prefect(runs: list[Any], tokens_dir: str, store_dir: Path, runner: Any) -> float:
    """Seconds for one flow run that submits ``run_proxy_task`` for every run (the product's
    sweep flow skips finished runs before submitting them, so it would measure nothing)."""
    from prefect import flow
    from prefect.futures import as_completed

    from proxies.runs import read_run_list, write_run_list
    from runtime.runners import make_task_runner
    from tasks.proxy import run_proxy_task

    @flow(name="prefect_overhead", task_runner=make_task_runner(runner))
    def submit_all(run_list: str, tokens_dir: str, store_dir: str) -> int:
        specs = read_run_list(run_list)
        futures = [run_proxy_task.submit(s, tokens_dir, store_dir, label) for label, s in specs]
        return sum(1 for f in as_completed(futures) if f.result()["record"])

    start = time.perf_counter()
    run_list = write_run_list(runs, store_dir / "run_lists")
    n = submit_all(str(run_list), tokens_dir, str(store_dir))
    elapsed = time.perf_counter() - start
    if n != len(runs):
        raise RuntimeError(f"{n} of {len(runs)} tasks returned a record")
    return elapsed


def measure(corpus: Any, work: Path, kind: str, p: OverheadParams) -> dict[str, Any]:
    from configs.schema import RunnerConfig

    workers = 1 if kind == "thread" else p.workers
    runner = RunnerConfig(kind=kind, max_workers=workers, torch_threads=1)
    engine = {}
    for n in (p.small, p.large):
        store = work / f"{kind}-{n}"
        runs = finished_runs(corpus, store, n, offset=1000 * n)
        base = direct(runs, str(corpus.path), store)
        engine[n] = through_prefect(runs, str(corpus.path), store, runner) - base
    per_task = (engine[p.large] - engine[p.small]) / (p.large - p.small)
    fixed = engine[p.small] - p.small * per_task
    return {
        "runner": kind,
        "workers": workers,
        "per_task_seconds": per_task,
        "fixed_seconds": fixed,
        "per_task_pct": 100 * per_task / PROXY_SECONDS,
        "amortized_pct": 100 * (per_task + fixed / REFERENCE_SWEEP) / PROXY_SECONDS,
        "engine_seconds": {str(k): v for k, v in engine.items()},
    }


def run(p: OverheadParams, work: Path) -> list[dict[str, Any]]:
    if p.large <= p.small:
        raise ValueError(f"large must exceed small, got {p.large} <= {p.small}")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from configs.schema import RunnerConfig
    from runtime.server import prefect_server, use_server

    corpus = smoke_corpus(work / "corpus", vocab=512, cap_bytes=200_000)
    with prefect_server(work / "server") as url, use_server(url, work / "client"):
        # The process's first flow run pays one-off costs (API client, imports); not measured.
        warm = finished_runs(corpus, work / "warm-up", 1, offset=0)
        through_prefect(warm, str(corpus.path), work / "warm-up", RunnerConfig())
        return [measure(corpus, work, kind, p) for kind in p.runners]


COLUMNS: list[Column] = [
    ("runner", col("runner")),
    ("workers", col("workers")),
    ("per task (s)", col("per_task_seconds", ".3f")),
    ("% of a 30 s run", col("per_task_pct", ".2f")),
    ("fixed per sweep (s)", col("fixed_seconds", ".1f")),
    (f"% of a 30 s run, {REFERENCE_SWEEP}-run sweep", col("amortized_pct", ".2f")),
]


CASES = [Case(name="prefect_overhead", params=OverheadParams, run=run, tables=one_table(COLUMNS))]
