"""Prefect task: write the chosen mixture in other trainers' formats (mixtures/export.py)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from configs.schema import ExperimentConfig
from mixtures.export import export_all


@task(name="export-mixture", cache_policy=NO_CACHE)
def export_mixture_task(
    config: ExperimentConfig, plan: dict, chosen: dict, exp_dir: str
) -> dict[str, str]:
    """<exp>/export/: HF interleave probabilities, OLMo-core, Megatron and RegMix configs."""
    domains = sorted(set(plan["train_domains"]) | set(plan["eval_domains"]))
    paths = export_all(
        chosen["mixture"],
        Path(exp_dir) / "export",
        order=plan["train_domains"],
        valid_domains=config.target.target_domains(domains),
        tokens_available=plan["tokens"],
        requested_tokens=config.target_run.train.train_tokens,
    )
    return {k: str(p) for k, p in paths.items()}
