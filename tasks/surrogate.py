"""Prefect tasks of the search (``mixtures.search``): surrogate quality, the choice, BO rounds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from mixtures.io import write_json, write_parquet
from mixtures.mixture import Mixture
from mixtures.names import DEFAULT_BO_SURROGATE, DEFAULT_SURROGATE
from mixtures.optimizers import BOOptimizer
from mixtures.runtable import RunTable
from mixtures.search import (
    WEIGHT_TOLERANCE,
    SearchSpace,
    bo_optimizer,
    choose_at_bo_scale,
    choose_mixture,
    compared_surrogates,
    finished_runs,
    pick_surrogate,
    propose_round,
    surrogate_quality,
    weak_support,
)
from mixtures.surrogates import Surrogate, make_surrogate
from proxies.config import TrainConfig, omit_defaults
from proxies.runs import RunSpec
from proxies.tokens import TokenCorpus

__all__ = [
    "choose_at_bo_scale_task",
    "choose_mixture_task",
    "pick_surrogate",
    "propose_bo_task",
    "surrogate_quality_task",
]


@task(name="surrogate-quality", cache_policy=NO_CACHE)
def surrogate_quality_task(
    config: ExperimentConfig, plan: Plan, table_path: str | None, exp: ExperimentDir
) -> list[dict[str, Any]]:
    """k-fold Spearman/Pearson/MAE of each compared surrogate; Parquet, artifact, OOF preds."""
    names = compared_surrogates(config.search.compare, config.search.surrogate)
    quality = surrogate_quality(
        {name: make_surrogate(name, random_state=config.seed) for name in names},
        _sweep(table_path, exp),
        plan.train_domains,
        folds=config.search.cv_folds,
        seed=config.seed,
    )
    write_parquet(quality.frame(), exp.surrogates)
    write_json(exp.surrogate_oof, quality.oof())
    create_table_artifact(
        key=f"{config.name.replace('_', '-')}-surrogate-quality",
        table=quality.frame().with_columns(pl.col(pl.Float64).round(4)).to_dicts(),
        description=f"{quality.folds}-fold cross-validated fit of each surrogate on "
        f"{len(quality.measured)} runs",
    )
    return quality.rows


@task(name="choose-mixture", cache_policy=NO_CACHE)
def choose_mixture_task(
    config: ExperimentConfig,
    plan: Plan,
    table_path: str | None,
    exp: ExperimentDir,
    quality: list[dict[str, Any]],
) -> dict[str, Any]:
    """RegMix-style: fit on every run, simulate candidates, average the top-k predicted. A
    surrogate that ranks the runs no better than chance out of fold is a WARNING, recorded in
    chosen.json (``warnings``) for the report."""
    name = pick_surrogate(config.search.surrogate, quality)
    warning = weak_support(name, quality)
    on_merged = config.search.method == "merge"
    chosen = choose_mixture(
        _sweep(table_path, exp),
        _space(plan),
        surrogate=make_surrogate(name),
        label=f"{name} on merged estimates" if on_merged else name,
        seed=config.seed,
        n_candidates=config.search.n_candidates,
        top_k=config.search.top_k,
    )
    if warning is not None:
        get_run_logger().warning("%s", warning)
        chosen["warnings"] = [warning]
    return _record_choice(chosen, exp)


@task(name="propose-bo", cache_policy=NO_CACHE)
def propose_bo_task(
    config: ExperimentConfig,
    plan: Plan,
    table_path: str | None,
    exp: ExperimentDir,
    round_index: int,
    bo_table: str | None = None,
    prior: str | None = None,
    merged: str | None = None,
) -> list[tuple[str, RunSpec]]:
    """One BO round's proposals; recorded, so a resumed flow trains the same mixtures.

    With ``search.bo_proxy`` the sweep's runs (``table_path``) are the low-fidelity prior
    (surrogate ``prior`` fitted on them), the rounds' runs so far (``bo_table``) the
    observations, and the proposals are trained with ``search.bo_proxy``. With ``merged``
    (``search.merge``'s estimates) those are the low-fidelity prior and every trained run so
    far (``table_path``) the observations."""
    bo_proxy = config.search.bo_proxy
    weights = propose_round(
        exp.bo_round(round_index),
        round_index=round_index,
        batch=config.search.bo_batch,
        scale=None if bo_proxy is None else _scale(bo_proxy),
        surrogate=config.search.bo_surrogate or DEFAULT_BO_SURROGATE,
        optimizer=lambda: _bo(
            config, plan, table_path, exp, bo_table, prior, round_index + 1, merged
        ),
    )
    corpus = TokenCorpus.load(plan.tokens_dir)
    return [
        (f"bo{round_index:02d}-{i}", _bo_spec(config, plan, corpus, w))
        for i, w in enumerate(weights)
    ]


@task(name="choose-mixture-bo-scale", cache_policy=NO_CACHE)
def choose_at_bo_scale_task(
    config: ExperimentConfig,
    plan: Plan,
    table_path: str | None,
    bo_table: str | None,
    exp: ExperimentDir,
    prior: str,
) -> dict[str, Any]:
    """With ``search.bo_proxy``: the GP (with the sweep as its low-fidelity prior) fitted on
    the rounds' runs recommends the mixture with the best posterior mean."""
    rounds = finished_runs(
        bo_table,
        runs="BO round run at the bo_proxy scale",
        statuses=exp.table_meta("runs_bo"),
        need=2,  # the fewest a GP is fitted on
    )
    gp, low_fidelity = _bo_surrogates(config, prior)
    chosen = choose_at_bo_scale(
        _sweep(table_path, exp),
        rounds,
        _space(plan),
        surrogate=gp,
        low_fidelity=low_fidelity,
        label=f"{_bo_name(config)} with a low-fidelity prior ({prior} on the sweep)",
        seed=config.seed,
        index=config.search.bo_rounds + 1,
    )
    return _record_choice(chosen, exp, " at the bo_proxy scale")


def _sweep(table_path: str | None, exp: ExperimentDir) -> RunTable:
    return finished_runs(table_path, runs="proxy run", statuses=exp.table_meta())


def _space(plan: Plan) -> SearchSpace:
    return SearchSpace(plan.bounds(), plan.prior())


def _record_choice(chosen: dict[str, Any], exp: ExperimentDir, where: str = "") -> dict[str, Any]:
    """Write chosen.json and log the choice (``where``: the scale, when not the sweep's)."""
    write_json(exp.chosen, chosen)
    get_run_logger().info(
        "chosen %s, predicted target %.4f%s", chosen["mixture"], chosen["predicted"], where
    )
    return chosen


def _bo_name(config: ExperimentConfig) -> str:
    return config.search.bo_surrogate or DEFAULT_BO_SURROGATE


def _bo_surrogates(
    config: ExperimentConfig, prior: str | None
) -> tuple[Surrogate, Surrogate | None]:
    """BO's GP and, with ``search.bo_proxy``, the sweep's surrogate as its low-fidelity prior."""
    low_fidelity = None
    if config.search.bo_proxy is not None:
        low_fidelity = make_surrogate(prior or DEFAULT_SURROGATE, random_state=config.seed)
    return make_surrogate(_bo_name(config)), low_fidelity


def _bo(
    config: ExperimentConfig,
    plan: Plan,
    table_path: str | None,
    exp: ExperimentDir,
    bo_table: str | None,
    prior: str | None,
    index: int,
    merged: str | None = None,
) -> BOOptimizer:
    if merged is not None:
        # the merged estimates are the prior, the trained runs (sweep and rounds) observed
        return bo_optimizer(
            RunTable.read(merged),
            _space(plan),
            surrogate=make_surrogate(_bo_name(config)),
            seed=config.seed,
            index=index,
            low_fidelity=make_surrogate(_merge_prior(config), random_state=config.seed),
            rounds=_sweep(table_path, exp),
        )
    gp, low_fidelity = _bo_surrogates(config, prior)
    rounds = None if low_fidelity is None or bo_table is None else RunTable.read(bo_table)
    return bo_optimizer(
        _sweep(table_path, exp),
        _space(plan),
        surrogate=gp,
        seed=config.seed,
        index=index,
        low_fidelity=low_fidelity,
        rounds=rounds,
    )


def _merge_prior(config: ExperimentConfig) -> str:
    """The surrogate fitted on the merged estimates as BO's prior: ``search.surrogate``, or
    the default one for ``auto`` (nothing is cross-validated on the estimates here)."""
    requested = config.search.surrogate
    return DEFAULT_SURROGATE if requested == "auto" else requested


def _bo_spec(
    config: ExperimentConfig, plan: Plan, corpus: TokenCorpus, weights: Mapping[str, float]
) -> RunSpec:
    """A BO round's proxy run: trained like the sweep's, or with ``search.bo_proxy``."""
    return RunSpec.for_mixture(
        Mixture(weights, domains=plan.train_domains, tolerance=WEIGHT_TOLERANCE, normalize=True),
        kind="proxy",
        corpus=corpus,
        train_domains=plan.train_domains,
        eval_domains=plan.eval_domains,
        train=config.search.bo_proxy or config.proxy,
        seed=config.seed,
        evaluator=config.target.evaluator_ref(),
    )


def _scale(train: TrainConfig) -> dict[str, Any]:
    """How a round's runs are trained, as recorded beside its proposals; fields at their
    ``OMITTED_AT`` value are left out, as in the run ids."""
    return omit_defaults(train.model_dump())
