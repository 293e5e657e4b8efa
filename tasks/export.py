"""Prefect task: write the chosen mixture in other trainers' formats (mixtures/export.py)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from mixtures.export import export_all


@task(name="export-mixture", cache_policy=NO_CACHE)
def export_mixture_task(
    config: ExperimentConfig, plan: Plan, chosen: dict, exp: ExperimentDir
) -> dict[str, str]:
    """<exp>/export/: HF interleave probabilities, OLMo-core, Megatron and RegMix configs."""
    domains = sorted(set(plan.train_domains) | set(plan.eval_domains))
    paths = export_all(
        chosen["mixture"],
        exp.export,
        order=plan.train_domains,
        valid_domains=config.target.target_domains(domains),
        tokens_available=plan.tokens,
        requested_tokens=plan.production_tokens,
    )
    return {k: str(p) for k, p in paths.items()}
