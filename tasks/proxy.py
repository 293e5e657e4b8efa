"""Prefect tasks of the proxy sweep: sample mixtures, run one proxy, collect the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan, RunTables
from configs.schema import ExperimentConfig
from configs.specs import sweep_specs, target_value_fn
from mixtures.io import write_parquet
from proxies.leases import RunLeased
from proxies.records import records_to_tables
from proxies.runs import RunSpec, RunStore, execute_pack, execute_run
from proxies.tokens import TokenCorpus
from runtime.placement import (
    DeviceLease,
    open_run_inputs,
    retry_unless_deterministic,
    task_placement,
)
from tasks import TRAIN_TAG
from tasks.common import git_sha

#: Attempts after the first of a training task that failed for a reason another attempt can fix
#: (a lost worker, a file system or network error). A retry never trains a run twice or tears its
#: record: records are replaced atomically, and a finished run is skipped.
TRAIN_RETRIES = 2
#: Options of every task that trains: never cached (finished runs are skipped by their records),
#: tagged for concurrency limits, retried as above.
TRAIN_TASK: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "tags": [TRAIN_TAG],
    "retries": TRAIN_RETRIES,
    "retry_delay_seconds": 5,
    "retry_condition_fn": retry_unless_deterministic,
}


@task(name="sample-mixtures", cache_policy=NO_CACHE)
def sample_sweep_task(config: ExperimentConfig, plan: Plan) -> list[tuple[str, RunSpec]]:
    """The sweep's (label, spec) pairs: sampled mixtures plus, optionally, the baselines."""
    return sweep_specs(config, plan, TokenCorpus.load(plan.tokens_dir))


@task(
    name="proxy-run",
    task_run_name="{label}-{spec.run_id}",
    **TRAIN_TASK,
)
def run_proxy_task(
    spec: RunSpec,
    tokens_dir: str,
    store_dir: str,
    label: str,
    devices: DeviceLease | None = None,
    wait: bool = True,
) -> dict:
    """Train and evaluate one model unless its finished record exists; returns
    ``{"record", "computed"}``. ``devices``: the thread runner's lease, of which the run takes
    a device while it trains. When another process is training the run: with ``wait``, its
    record once written (not computed here); without, ``deferred(...)`` at once, so that the
    flow can train other runs first."""
    logger = get_run_logger()
    with task_placement(devices, train_device=spec.train.device) as placement:
        corpus, store = open_run_inputs(tokens_dir, store_dir, host=placement.host)
        try:
            record, computed = execute_run(
                spec,
                corpus,
                store,
                extra={"label": label, "git_sha": git_sha(), "placement": placement.to_json()},
                log=logger.info,
                device=placement.device,
                wait=wait,
            )
        except RunLeased as leased:
            logger.info("%s %s: %s; left for later", label, spec.run_id, leased)
            return deferred(spec.run_id)
    _log_record(logger, {"label": label, **record}, computed)
    return {"record": record, "computed": computed}


def deferred(run_id: str) -> dict:
    """A training task's outcome for a run that another process is training: no record yet."""
    return {"record": None, "computed": False, "run_id": run_id}


def _log_record(logger: Any, record: dict, computed: bool) -> None:
    res = record["result"]
    logger.info(
        "%s %s: %s in %.1fs (%.0f tok/s) on %s%s",
        record.get("label", ""),
        record["run_id"],
        res["status"],
        res["wall_seconds"],
        res["tokens_per_second"],
        record.get("placement", {}).get("device") or res["device"],
        "" if computed else " [finished earlier: skipped]",
    )
    if res["status"] == "failed":
        logger.error("run %s failed: %s", record["run_id"], res["error"])


@task(
    name="proxy-pack",
    task_run_name="pack-{size}-{first}",
    **TRAIN_TASK,
)
def run_pack_task(
    specs: list[RunSpec],
    tokens_dir: str,
    store_dir: str,
    labels: list[str],
    devices: DeviceLease | None = None,
    size: int = 0,
    first: str = "",
    wait: bool = True,
) -> list[dict]:
    """Train runs that differ only in mixture and seed as one pack (``proxies.pack``), each
    unless its finished record exists; each member's record is written as soon as it is known.
    ``size`` and ``first`` name the task run (members, first run id). A member that another
    process is training is left out of the pack: with ``wait`` waited for afterwards, without
    returned as ``deferred``."""
    logger = get_run_logger()
    with task_placement(devices, train_device=specs[0].train.device) as placement:
        corpus, store = open_run_inputs(tokens_dir, store_dir, host=placement.host)
        extra = {"git_sha": git_sha(), "placement": placement.to_json()}
        out = execute_pack(
            specs,
            corpus,
            store,
            extras=[{"label": label, **extra} for label in labels],
            log=logger.info,
            device=placement.device,
            on_record=lambda record: _log_record(logger, record, True),
            wait=wait,
        )
    for record, computed in out:
        if not computed:
            _log_record(logger, record, False)
    given = {record["run_id"] for record, _ in out}
    left = [deferred(spec.run_id) for spec in specs if spec.run_id not in given]
    if left:
        logger.info("%d run(s) of the pack are being trained by another process", len(left))
    return [{"record": record, "computed": computed} for record, computed in out] + left


@task(name="collect-runs", cache_policy=NO_CACHE)
def collect_runs_task(
    config: ExperimentConfig,
    plan: Plan,
    store_dir: str | Path,
    exp: ExperimentDir,
    stem: str,
    labels: dict[str, str],
) -> RunTables:
    """Write <stem>.parquet (run table) and <stem>_meta.parquet; table artifact."""
    records = RunStore(store_dir).records(run_ids=set(labels))
    table, meta = records_to_tables(
        records,
        train_domains=plan.train_domains,
        target=target_value_fn(config, plan),
        labels=labels,
    )
    write_parquet(meta, exp.table_meta(stem))
    counts = meta.group_by("status").len().sort("status")
    get_run_logger().info("runs by status: %s", dict(counts.iter_rows()))
    if table is None:
        return RunTables(table=None, meta=str(exp.table_meta(stem)), n_ok=0)
    table_path = table.write(exp.table(stem))
    wide = table.wide().join(meta.select("run_id", "label", "status"), on="run_id")
    shown = wide.select(
        "label",
        "run_id",
        pl.col("m:target").round(4).alias("target"),
        *[pl.col(f"w:{d}").round(3).alias(d) for d in plan.train_domains],
    ).sort("target")
    create_table_artifact(
        key=f"{config.name.replace('_', '-')}-{stem.replace('_', '-')}",
        table=shown.to_dicts(),
        description=f"{len(shown)} finished runs of {config.name}, best target first",
    )
    return RunTables(table=str(table_path), meta=str(exp.table_meta(stem)), n_ok=len(table))
