"""Prefect tasks of the proxy sweep: sample mixtures, run one proxy, collect the tables."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from proxies.runs import RunSpec, RunStore, execute_run
from proxies.tokens import TokenCorpus
from tasks.common import git_sha


@task(
    name="proxy-run",
    task_run_name="{label}-{spec.run_id}",
    cache_policy=NO_CACHE,
    tags=["proxy"],
)
def run_proxy_task(spec: RunSpec, tokens_dir: str, store_dir: str, label: str) -> dict:
    """Train and evaluate one model unless its finished record exists; returns the record."""
    logger = get_run_logger()
    corpus = TokenCorpus.load(tokens_dir)
    record, computed = execute_run(
        spec,
        corpus,
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
