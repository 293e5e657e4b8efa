"""Prefect tasks that plan runs and turn their records into tables and artifacts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.schema import ExperimentConfig
from mixtures.constraints import Bounds
from mixtures.mixture import Mixture
from proxies.runs import RunSpec, RunStore
from proxies.sweep import (
    natural_mixture,
    records_to_tables,
    sample_sweep,
    split_domains,
    target_fn,
)
from proxies.tokens import TokenCorpus
from tasks.common import write_json

#: SeedSequence spawn keys: one stream per use of the experiment seed, so that changing one
#: part (e.g. the number of sweep runs) never shifts another part's random numbers.
SWEEP_STREAM, SEARCH_STREAM = 1, 2


def seed_stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def target_value_fn(config: ExperimentConfig, plan: dict) -> Callable[[Mapping[str, Any]], float]:
    """The config's target as a function of a run's result (``proxies.sweep.target_fn``)."""
    t = config.target
    return target_fn(
        t.kind,
        domain=t.domain,
        weights=t.weights,
        eval_domains=plan["eval_domains"],
        evaluator=t.evaluator,
    )


@task(name="plan-experiment", cache_policy=NO_CACHE)
def plan_experiment_task(config: ExperimentConfig, tokens_dir: str, exp_dir: str) -> dict:
    """Fix the domains, bounds and baseline mixtures once; write plan.json."""
    corpus = TokenCorpus.load(tokens_dir)
    t = config.target
    train, evald = split_domains(
        list(corpus.domains), t.target_domains(list(corpus.domains)), holdout=t.holdout
    )
    tokens = corpus.tokens("train")
    bounds = Bounds.build(
        train,
        min_weight=config.sweep.min_weight,
        max_weight=config.sweep.max_weight,
        tokens_available=tokens,
        token_budget=config.target_run.train.train_tokens,
        max_epochs=config.sweep.max_epochs,
    )
    plan = {
        "tokens_dir": str(tokens_dir),
        "corpus_fingerprint": corpus.fingerprint,
        "train_domains": train,
        "eval_domains": evald,
        "tokens": {d: tokens[d] for d in train},
        "lower": bounds.lower.tolist(),
        "upper": bounds.upper.tolist(),
        "baselines": {
            "uniform": dict(Mixture.uniform(train)),
            "natural": dict(natural_mixture(tokens, train)),
        },
    }
    write_json(Path(exp_dir) / "plan.json", plan)
    return plan


def plan_bounds(plan: dict) -> Bounds:
    return Bounds(tuple(plan["train_domains"]), np.array(plan["lower"]), np.array(plan["upper"]))


@task(name="sample-mixtures", cache_policy=NO_CACHE)
def sample_sweep_task(config: ExperimentConfig, plan: dict) -> list[tuple[str, RunSpec]]:
    """The sweep's (label, spec) pairs: sampled mixtures plus, optionally, the baselines."""
    corpus = TokenCorpus.load(plan["tokens_dir"])
    train = plan["train_domains"]
    mixtures = sample_sweep(
        config.sweep.n_runs,
        domains=train,
        tokens=plan["tokens"],
        bounds=plan_bounds(plan),
        sampler=config.sweep.sampler,
        rng=seed_stream(config.seed, SWEEP_STREAM),
    )
    labelled = [(f"mix{i:03d}", m) for i, m in enumerate(mixtures)]
    if config.sweep.include_baselines:
        labelled += [(k, Mixture(v)) for k, v in plan["baselines"].items()]
    # Every proxy shares the experiment seed (common random numbers: same initialisation and
    # batch stream), so differences between runs come from the mixture, not from noise.
    return [
        (
            label,
            RunSpec.for_mixture(
                m,
                kind="proxy",
                corpus=corpus,
                train_domains=train,
                eval_domains=plan["eval_domains"],
                train=config.proxy,
                seed=config.seed,
                evaluator=config.target.evaluator_ref(),
            ),
        )
        for label, m in labelled
    ]


@task(name="collect-runs", cache_policy=NO_CACHE)
def collect_runs_task(
    config: ExperimentConfig, plan: dict, store_dir: str, out_prefix: str, labels: dict[str, str]
) -> dict:
    """Write <out_prefix>.parquet (run table) and <out_prefix>_meta.parquet; table artifact."""
    records = [r for r in RunStore(store_dir).records() if r["run_id"] in labels]
    fn = target_value_fn(config, plan)
    table, meta = records_to_tables(
        records, train_domains=plan["train_domains"], target=fn, labels=labels
    )
    meta_path = Path(f"{out_prefix}_meta.parquet")
    meta.write_parquet(meta_path)
    counts = meta.group_by("status").len().sort("status")
    get_run_logger().info("runs by status: %s", dict(counts.iter_rows()))
    table_path = None
    if table is not None:
        table_path = str(table.write(Path(f"{out_prefix}.parquet")))
        wide = table.wide().join(meta.select("run_id", "label", "status"), on="run_id")
        shown = wide.select(
            "label",
            "run_id",
            pl.col("m:target").round(4).alias("target"),
            *[pl.col(f"w:{d}").round(3).alias(d) for d in plan["train_domains"]],
        ).sort("target")
        create_table_artifact(
            key=f"{config.name.replace('_', '-')}-{Path(out_prefix).name.replace('_', '-')}",
            table=shown.to_dicts(),
            description=f"{len(shown)} finished runs of {config.name}, best target first",
        )
    return {"table": table_path, "meta": str(meta_path), "n_ok": 0 if table is None else len(table)}


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
