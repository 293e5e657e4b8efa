"""Prefect tasks: surrogate quality (cross-validated), the choice, BO proposals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from configs.schema import ExperimentConfig
from mixtures.errors import DataError
from mixtures.io import write_json
from mixtures.mixture import Mixture
from mixtures.optimizers import Optimizer, make_optimizer
from mixtures.quality import fit_scores, kfold_predictions
from mixtures.runtable import RunTable
from mixtures.surrogates import DEFAULT_SURROGATE, make_surrogate
from mixtures.surrogates.transfer import LowFidelityPrior
from proxies.runs import RunSpec
from proxies.tokens import TokenCorpus
from tasks.sweep import SEARCH_STREAM, plan_bounds, read_json


def _table(path: str | None) -> RunTable:
    if path is None:
        raise DataError("no proxy run finished ok: nothing to fit (see runs_meta.parquet)")
    return RunTable.read(path)


def _prior(plan: dict) -> np.ndarray:
    counts = np.array([plan["tokens"][d] for d in plan["train_domains"]], dtype=float)
    return counts / counts.sum()


def _search_seed(config: ExperimentConfig, round_index: int = 0) -> int:
    ss = np.random.SeedSequence(config.seed, spawn_key=(SEARCH_STREAM, round_index))
    return int(ss.generate_state(1)[0])


@task(name="surrogate-quality", cache_policy=NO_CACHE)
def surrogate_quality_task(
    config: ExperimentConfig, plan: dict, table_path: str | None, exp_dir: str
) -> list[dict]:
    """k-fold Spearman/Pearson/MAE of each compared surrogate; Parquet, artifact, OOF preds."""
    table = _table(table_path)
    x, y = table.weights(plan["train_domains"]), table.target("target")
    folds = min(config.search.cv_folds, len(y))
    rows, oof = [], {}
    names = [*config.search.compare]
    if config.search.surrogate != "auto":
        names.append(config.search.surrogate)
    for name in dict.fromkeys(names):
        pred = kfold_predictions(
            lambda n=name: make_surrogate(n, random_state=config.seed),
            x,
            y,
            folds=folds,
            seed=config.seed,
        )
        oof[name] = pred.tolist()
        rows.append({"surrogate": name, "runs": len(y), "folds": folds, **fit_scores(y, pred)})
    quality = pl.DataFrame(rows)
    quality.write_parquet(Path(exp_dir) / "surrogates.parquet")
    write_json(Path(exp_dir) / "surrogate_oof.json", {"measured": y.tolist(), "predicted": oof})
    create_table_artifact(
        key=f"{config.name.replace('_', '-')}-surrogate-quality",
        table=quality.with_columns(pl.col(pl.Float64).round(4)).to_dicts(),
        description=f"{folds}-fold cross-validated fit of each surrogate on {len(y)} runs",
    )
    return quality.to_dicts()


def pick_surrogate(requested: str, quality: list[dict]) -> str:
    """``requested``, or for ``auto`` the best cross-validated Spearman (NaN never wins)."""
    if requested != "auto":
        return requested
    scored = [
        (q["spearman"], -i, q["surrogate"])
        for i, q in enumerate(quality)
        if q["spearman"] == q["spearman"]
    ]
    if not scored:
        raise DataError("surrogate auto: no surrogate has a finite cross-validated Spearman")
    return max(scored)[2]


@task(name="choose-mixture", cache_policy=NO_CACHE)
def choose_mixture_task(
    config: ExperimentConfig,
    plan: dict,
    table_path: str | None,
    exp_dir: str,
    quality: list[dict],
) -> dict:
    """RegMix-style: fit on every run, simulate candidates, average the top-k predicted."""
    table = _table(table_path)
    train = plan["train_domains"]
    surrogate = pick_surrogate(config.search.surrogate, quality)
    opt = make_optimizer(
        "regmix",
        domains=train,
        bounds=plan_bounds(plan),
        prior=_prior(plan),
        seed=_search_seed(config),
        surrogate=surrogate,
        n_candidates=config.search.n_candidates,
        top_k=config.search.top_k,
    )
    x, y = table.weights(train), table.target("target")
    opt.observe([Mixture.from_array(train, row, tolerance=1e-5) for row in x], y.tolist())
    return _record_choice(opt, table, surrogate, exp_dir)


def _record_choice(
    opt: Optimizer, table: RunTable, surrogate: str, exp_dir: str, where: str = ""
) -> dict:
    """The optimizer's recommendation with the best run of ``table``, written to chosen.json
    and logged (``where``: the scale, when it is not the sweep's)."""
    mixture, predicted, std = opt.recommend()
    y = table.target("target")
    chosen = {
        "mixture": mixture.rounded(6),
        "predicted": float(predicted),
        "predicted_std": None if std is None else float(std),
        "surrogate": surrogate,
        "best_observed": {"run_id": table.run_ids[int(np.argmin(y))], "target": float(y.min())},
    }
    write_json(Path(exp_dir) / "chosen.json", chosen)
    get_run_logger().info("chosen %s, predicted target %.4f%s", chosen["mixture"], predicted, where)
    return chosen


@task(name="propose-bo", cache_policy=NO_CACHE)
def propose_bo_task(
    config: ExperimentConfig,
    plan: dict,
    table_path: str | None,
    exp_dir: str,
    round_index: int,
    bo_table_path: str | None = None,
    prior_surrogate: str | None = None,
) -> list[tuple[str, RunSpec]]:
    """One BO round's proposals; saved, so a resumed flow trains the same mixtures.

    With ``search.bo_proxy`` the sweep's runs (``table_path``) are the low-fidelity prior
    (``prior_surrogate`` fitted on them), the rounds' runs so far (``bo_table_path``) the
    observations, and the proposals are trained with ``bo_proxy``."""
    path = Path(exp_dir) / f"bo_round_{round_index:02d}.json"
    train = plan["train_domains"]
    # which proxies the round trains: a file proposed for the sweep's scale must not be reused
    # at bo_proxy's (or the other way round); files written before this key are the sweep's
    scale = None if config.search.bo_proxy is None else config.search.bo_proxy.model_dump()
    if path.exists():
        saved = read_json(path)
        if saved.get("bo_proxy") != scale:
            raise DataError(
                f"{path} holds proposals for rounds trained with search.bo_proxy = "
                f"{saved.get('bo_proxy')}, this config has {scale}: use another experiment "
                "folder, or delete the bo_round_*.json files to propose again"
            )
        weights = saved["mixtures"]
    else:
        opt = _bo_optimizer(
            config, plan, table_path, bo_table_path, prior_surrogate, round_index + 1
        )
        weights = [dict(m) for m in opt.ask(config.search.bo_batch)]
        record = {"round": round_index, "mixtures": weights, "bo_proxy": scale}
        write_json(path, {**record, "bo_surrogate": config.search.bo_surrogate})
    corpus = TokenCorpus.load(plan["tokens_dir"])
    return [
        (
            f"bo{round_index:02d}-{i}",
            RunSpec.for_mixture(
                Mixture(w, domains=train, tolerance=1e-5, normalize=True),
                kind="proxy",
                corpus=corpus,
                train_domains=train,
                eval_domains=plan["eval_domains"],
                train=config.search.bo_proxy or config.proxy,
                seed=config.seed,
                evaluator=config.target.evaluator_ref(),
            ),
        )
        for i, w in enumerate(weights)
    ]


@task(name="choose-mixture-bo-scale", cache_policy=NO_CACHE)
def choose_at_bo_scale_task(
    config: ExperimentConfig,
    plan: dict,
    table_path: str | None,
    bo_table_path: str | None,
    exp_dir: str,
    prior_surrogate: str,
) -> dict:
    """With ``search.bo_proxy``: the GP (with the sweep as its low-fidelity prior) fitted on
    the rounds' runs recommends the mixture with the best posterior mean."""
    if bo_table_path is None:
        raise DataError(
            "no BO round run at the bo_proxy scale finished ok: nothing to choose from "
            "(see runs_bo_meta.parquet)"
        )
    bo_table = RunTable.read(bo_table_path)
    if len(bo_table) < 2:
        raise DataError(
            f"only {len(bo_table)} BO round run finished ok at the bo_proxy scale; the GP needs 2 "
            "(see runs_bo_meta.parquet)"
        )
    rounds = config.search.bo_rounds
    opt = _bo_optimizer(config, plan, table_path, bo_table, prior_surrogate, rounds + 1)
    label = f"{opt.surrogate} with a low-fidelity prior ({prior_surrogate} on the sweep)"
    return _record_choice(opt, bo_table, label, exp_dir, " at the bo_proxy scale")


def _bo_optimizer(
    config: ExperimentConfig,
    plan: dict,
    table_path: str | None,
    bo_runs: str | RunTable | None,
    prior_surrogate: str | None,
    seed_index: int,
) -> Optimizer:
    """The BO optimizer with every result so far: without ``bo_proxy`` it observes the sweep's
    table (which holds the rounds' runs too); with it, the sweep is the low-fidelity prior and
    the rounds' own table (``bo_runs``: its path, the table itself, or None) the
    observations."""
    train = plan["train_domains"]
    table = _table(table_path)
    params: dict = {}
    observed: RunTable | None = table
    if config.search.bo_proxy is not None:
        prior = LowFidelityPrior(prior_surrogate or DEFAULT_SURROGATE, random_state=config.seed)
        params["low_fidelity"] = prior.fit(
            table.weights(train), table.target("target"), domains=train
        )
        observed = RunTable.read(bo_runs) if isinstance(bo_runs, str) else bo_runs
    opt = make_optimizer(
        "bo",
        domains=train,
        bounds=plan_bounds(plan),
        prior=_prior(plan),
        seed=_search_seed(config, seed_index),
        surrogate=config.search.bo_surrogate,
        **params,
    )
    if observed is not None:
        x, y = observed.weights(train), observed.target("target")
        opt.observe([Mixture.from_array(train, row, tolerance=1e-5) for row in x], y.tolist())
    return opt
