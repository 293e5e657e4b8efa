"""Prefect tasks that open an experiment: save its resolved config, fix its plan."""

from __future__ import annotations

import time

import yaml
from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.binding import bind_experiment_dir
from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from configs.specs import check_init_models, make_plan
from mixtures.io import atomic_write_text, write_json
from proxies.tokens import TokenCorpus
from tasks.common import git_sha


@task(name="setup-experiment", cache_policy=NO_CACHE)
def setup_experiment_task(config: ExperimentConfig, exp: ExperimentDir) -> ExperimentDir:
    """Save the resolved config, seed and git sha beside the results. A folder holding results
    of a config that differs in a field that changes results is refused (``configs.binding``):
    the command line checks (or moves aside, ``--force``) before any server starts; this
    catches runs from a deployment or from Python."""
    bind_experiment_dir(exp, config)
    atomic_write_text(exp.config, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    write_json(
        exp.meta,
        {
            "seed": config.seed,
            "git_sha": git_sha(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return exp


@task(name="plan-experiment", cache_policy=NO_CACHE)
def plan_experiment_task(config: ExperimentConfig, tokens_dir: str, exp: ExperimentDir) -> Plan:
    """Fix the domains, bounds and baseline mixtures once; write plan.json. Every
    ``init_from`` model is checked against the corpus here, before anything trains, and the
    folder against the config (``configs.binding``; ``target_run`` starts here)."""
    bind_experiment_dir(exp, config)
    corpus = TokenCorpus.load(tokens_dir)
    check_init_models(config, corpus)
    plan = make_plan(config, corpus)
    plan.write(exp.plan)
    return plan
