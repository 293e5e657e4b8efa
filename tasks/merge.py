"""Prefect tasks of model merging (``proxies.merge``): the shared trunk and one expert per
domain, trained as runs with ids and resume; then the merged estimates of candidate mixtures."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from configs.specs import merge_candidates, merge_spec, target_value_fn
from mixtures.io import write_json
from mixtures.runtable import RunTable
from proxies.tokens import TokenCorpus
from runtime.placement import task_placement
from tasks.common import git_sha
from tasks.proxy import TRAIN_TASK

#: The run table of the merged estimates (``ExperimentDir.table``).
MERGED_STEM = "runs_merged"


@task(name="merge-experts", **TRAIN_TASK)
def train_experts_task(config: ExperimentConfig, plan: Plan, exp: ExperimentDir) -> list[dict]:
    """The trunk and every expert ``search.merge`` asks for, each trained unless its finished
    record exists (``proxies.merge.train_branches``); one line per stage."""
    from proxies.merge import MergeStore, train_branches

    logger = get_run_logger()
    corpus = TokenCorpus.load(plan.tokens_dir)
    spec = merge_spec(config, plan, corpus)
    with task_placement(None, train_device=spec.train.device) as placement:
        out = train_branches(
            corpus,
            spec,
            MergeStore(exp.merge_store),
            device=placement.device,
            log=logger.info,
            extra={"git_sha": git_sha(), "placement": placement.to_json()},
        )
    for record, computed in out:
        logger.info(
            "%s %s %s: %s",
            record["stage"],
            record["domain"] or "",
            record["run_id"],
            "trained" if computed else "finished earlier: skipped",
        )
    return [
        {"run_id": r["run_id"], "stage": r["stage"], "domain": r["domain"], "computed": now}
        for r, now in out
    ]


@task(name="merged-estimates", cache_policy=NO_CACHE)
def merged_estimates_task(
    config: ExperimentConfig, plan: Plan, exp: ExperimentDir, sweep_table: str | None
) -> str:
    """The merged models of ``search.merge.candidates`` sampled mixtures and of the sweep's
    trained ones, evaluated: runs_merged.parquet, and merge.json with the experts, their cost
    and how the estimates rank the sweep's trained runs. A rerun with the same experts and
    mixtures reads the table instead of evaluating again."""
    from proxies.merge import MergeStore, agreement, estimate_mixtures, merged_run_id

    corpus = TokenCorpus.load(plan.tokens_dir)
    spec = merge_spec(config, plan, corpus)
    sweep = None if sweep_table is None else RunTable.read(sweep_table)
    rows = [m.to_array(plan.train_domains) for m in merge_candidates(config, plan)]
    if sweep is not None:
        rows += list(sweep.weights(plan.train_domains))
    unique = {merged_run_id(spec, r): r for r in rows}
    path = exp.table(MERGED_STEM)
    table = RunTable.read(path) if path.is_file() else None
    if table is None or set(table.run_ids) != set(unique):
        with task_placement(None, train_device=spec.train.device) as placement:
            table = estimate_mixtures(
                corpus,
                spec,
                MergeStore(exp.merge_store),
                np.array(list(unique.values())),
                eval_domains=plan.eval_domains,
                target=target_value_fn(config, plan),
                device=placement.device,
            )
        table.write(path)
    agree = None if sweep is None else agreement(spec, table, sweep)
    merge = config.search.merge
    record: dict[str, Any] = {
        "merge_id": spec.merge_id,
        "trunk_id": spec.trunk_id,
        "experts": {d: spec.expert_id(d) for d in spec.domains},
        "trunk_fraction": spec.trunk_fraction,
        "trunk_mixture": None if merge is None else merge.trunk_mixture,
        "cost_runs": spec.cost_runs,
        "estimates": len(table),
        "agreement": agree,
    }
    write_json(exp.merge, record)
    _log_and_show(config, record, table)
    return str(path)


def _log_and_show(config: ExperimentConfig, record: dict[str, Any], table: RunTable) -> None:
    agree = record["agreement"] or {}
    rho = agree.get("spearman")
    get_run_logger().info(
        "%d merged estimates from %d experts (cost %.2f proxy runs); Spearman with the "
        "sweep's %s trained runs: %s",
        record["estimates"],
        len(record["experts"]),
        record["cost_runs"],
        agree.get("runs", 0),
        "undefined" if rho is None else f"{rho:.3f}",
    )
    best = table.wide().select("run_id", pl.col("m:target").round(4).alias("target"))
    create_table_artifact(
        key=f"{config.name.replace('_', '-')}-merged-estimates",
        table=best.sort("target").head(20).to_dicts(),
        description=f"the 20 best of {len(table)} merged estimates of {config.name}",
    )
