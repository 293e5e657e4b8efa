"""Prefect tasks of the proxy sweep: sample mixtures, run one proxy, collect the tables."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan, RunTables
from configs.schema import ExperimentConfig
from configs.specs import sweep_specs, target_value_fn
from mixtures.io import write_parquet
from proxies.records import records_to_tables
from proxies.runs import RunSpec, RunStore, execute_run
from proxies.tokens import TokenCorpus
from tasks import TRAIN_TAG
from tasks.common import git_sha


@task(name="sample-mixtures", cache_policy=NO_CACHE)
def sample_sweep_task(config: ExperimentConfig, plan: Plan) -> list[tuple[str, RunSpec]]:
    """The sweep's (label, spec) pairs: sampled mixtures plus, optionally, the baselines."""
    return sweep_specs(config, plan, TokenCorpus.load(plan.tokens_dir))


@task(
    name="proxy-run",
    task_run_name="{label}-{spec.run_id}",
    cache_policy=NO_CACHE,
    tags=[TRAIN_TAG],
)
def run_proxy_task(spec: RunSpec, tokens_dir: str, store_dir: str, label: str) -> dict:
    """Train and evaluate one model unless its finished record exists; returns the record."""
    logger = get_run_logger()
    record, computed = execute_run(
        spec,
        TokenCorpus.load(tokens_dir),
        RunStore(store_dir),
        extra={"label": label, "git_sha": git_sha()},
        log=logger.info,
    )
    res = record["result"]
    logger.info(
        "%s %s: %s in %.1fs (%.0f tok/s)%s",
        label,
        spec.run_id,
        res["status"],
        res["wall_seconds"],
        res["tokens_per_second"],
        "" if computed else " [finished earlier: skipped]",
    )
    if res["status"] == "failed":
        logger.error("run %s failed: %s", spec.run_id, res["error"])
    return {"record": record, "computed": computed}


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
