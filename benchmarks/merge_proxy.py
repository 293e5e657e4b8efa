"""Linear model merging as a proxy, against trained proxies of the same mixtures.

The experts (``proxies.merge``: a shared trunk on the uniform mixture for a share of the proxy
budget, then one branch per training domain) are trained with an experiment's proxy settings;
the merged model of each of the experiment's trained mixtures is evaluated, and its validation
losses are ranked against the trained runs' (Spearman per domain). The cost is in proxy-run
equivalents (training steps over one run's).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.suite import Case, Column, Params, col, one_table


class MergeParams(Params):
    """Merged experts against trained proxies: Spearman of their validation losses per domain,
    for shared-trunk shares of the budget."""

    smoke: ClassVar[Mapping[str, Any]] = {"experiment": None, "shares": [0.0, 0.5]}

    experiment: str | None = "runs/demo"
    """A finished experiment (its proxy config and trained runs are the truth); None: a tiny
    packed sweep trained here first (for the smoke run)."""
    shares: list[float] = [0.0, 0.25, 0.5, 0.75]
    """Shares of the proxy's steps trained as the shared trunk before branching."""


def run_merge(p: MergeParams, work: Path) -> list[dict[str, Any]]:
    import numpy as np
    from scipy.stats import spearmanr

    from benchmarks.pack_throughput import experiment_runs
    from proxies.merge import merged_losses, train_experts
    from proxies.runs import RunSpec, RunStore
    from proxies.tokens import TokenCorpus

    store_dir, tokens, _ = experiment_runs(p.experiment, work)
    records = [r for r in RunStore(store_dir).records() if r["result"]["status"] == "ok"]
    specs = [RunSpec.model_validate(r["spec"]) for r in records]
    first = specs[0]
    corpus = TokenCorpus.load(tokens)
    cfg = first.train.model_copy(update={"pack": 1})
    mixtures = np.array([s.weights for s in specs], dtype=float)
    mixtures /= mixtures.sum(1, keepdims=True)
    rows = []
    for share in p.shares:
        experts = train_experts(
            corpus,
            train_domains=first.domains,
            cfg=cfg,
            seed=first.seed,
            trunk_fraction=share,
            trunk_weights=np.full(len(first.domains), 1 / len(first.domains)),
        )
        merged = merged_losses(experts, corpus, mixtures, eval_domains=first.eval_domains, cfg=cfg)
        per_domain = {}
        for d in first.eval_domains:
            truth = [r["result"]["val_loss"][d] for r in records]
            estimate = [m[d] for m in merged]
            per_domain[d] = float(spearmanr(truth, estimate).statistic)
        row = {
            "trunk_share": share,
            "runs": len(records),
            "cost_runs": experts.cost_runs,
            "spearman": per_domain,
            "median_spearman": float(np.median(list(per_domain.values()))),
        }
        print(f"trunk {share:.2f}: cost {experts.cost_runs:.2f} runs, {per_domain}", flush=True)
        rows.append(row)
    return rows


def _spearmans(row: Mapping[str, Any]) -> str:
    return ", ".join(f"{d} {v:.2f}" for d, v in row["spearman"].items())


COLUMNS: list[Column] = [
    ("trunk share", col("trunk_share", ".2f")),
    ("cost (proxy runs)", col("cost_runs", ".2f")),
    ("trained runs compared", col("runs")),
    ("median Spearman", col("median_spearman", ".2f")),
    ("Spearman per domain", _spearmans),
]

CASES = [Case(name="merge_proxy", params=MergeParams, run=run_merge, tables=one_table(COLUMNS))]


class PoolParams(Params):
    """Merged estimates against a swarm of trained proxies: their rank per column beside
    surrogates fitted on as many trained runs as merging costs (k + 1), and BO replays on the
    swarm with and without the merged estimates as the GP's low-fidelity prior."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "experiment": None,
        "shares": [0.5],
        "surrogates": ["ridge"],
        "draws": 2,
        "fit_runs": 2,
        "budget": 4,
        "repeats": 1,
        "replay_share": 0.5,
        "workers": 1,
    }

    experiment: str | None = "runs/demo256"
    """A finished sweep whose trained runs are the truth (the demo's proxy settings, 256
    sampled mixtures and the 2 baselines: ``mixopt sweep --config configs/demo.yaml
    --experiment-dir runs/demo256 --set sweep.n_runs=256``); None: a tiny packed sweep."""
    shares: list[float] = [0.5, 0.75]
    """Shares of the proxy's steps trained as the shared trunk."""
    surrogates: list[str] = ["ridge", "ensemble", "gp"]
    """Surrogates fitted on k + 1 random trained runs (the best per column is reported)."""
    draws: int = 30
    """Random sets of ``fit_runs`` trained runs each surrogate is fitted on."""
    fit_runs: int | None = None
    """Trained runs per fit; None: k + 1 for k training domains, merging's cost."""
    budget: int = 64
    repeats: int = 8
    replay_share: float = 0.75
    """The trunk share whose estimates are BO's prior in the replay."""
    workers: int = 2


def run_pool(p: PoolParams, work: Path) -> list[dict[str, Any]]:
    import numpy as np

    from benchmarks.pack_throughput import experiment_runs
    from proxies.runs import RunSpec, RunStore
    from proxies.tokens import TokenCorpus

    store_dir, tokens, _ = experiment_runs(p.experiment, work)
    records = [r for r in RunStore(store_dir).records() if r["result"]["status"] == "ok"]
    specs = [RunSpec.model_validate(r["spec"]) for r in records]
    first = specs[0]
    x = np.array([s.weights for s in specs], dtype=float)
    truth = {c: np.array([r["result"]["val_loss"][c] for r in records]) for c in first.eval_domains}
    pool = Pool(
        corpus=TokenCorpus.load(tokens),
        cfg=first.train.model_copy(update={"pack": 1}),
        seed=first.seed,
        domains=list(first.domains),
        x=x / x.sum(1, keepdims=True),
        truth=truth,
    )
    return pool_rows(p, pool)


@dataclass(frozen=True)
class Pool:
    """Trained runs to rank merged estimates against: their corpus, training config and seed,
    training domains, mixtures (n, domains) and validation losses per column."""

    corpus: Any
    cfg: Any
    seed: int
    domains: list[str]
    x: Any
    truth: dict[str, Any]


def pool_rows(p: PoolParams, pool: Pool) -> list[dict[str, Any]]:
    """The rows of ``merge_pool``: merged estimates per trunk share, surrogates fitted on
    ``fit_runs`` trained runs, and the BO replays on the pool with and without the prior."""
    import numpy as np

    from mixtures.errors import ConfigError
    from mixtures.evaluation import replay, score
    from mixtures.surrogates import LowFidelityPrior, make_surrogate
    from proxies.merge import merged_losses, train_experts

    corpus, cfg, domains, x, truth = pool.corpus, pool.cfg, pool.domains, pool.x, pool.truth
    if p.replay_share not in p.shares:
        raise ConfigError(f"replay_share {p.replay_share} is not one of shares {p.shares}")
    columns = list(truth)
    # the target of the swarm's experiment: its held-out column (the demo's tech_docs)
    target = next((c for c in columns if c not in domains), columns[0])
    rows: list[dict[str, Any]] = []
    estimates: dict[float, dict[str, np.ndarray]] = {}
    for share in p.shares:
        started = time.perf_counter()
        experts = train_experts(
            corpus,
            train_domains=domains,
            cfg=cfg,
            seed=pool.seed,
            trunk_fraction=share,
            trunk_weights=np.full(len(domains), 1 / len(domains)),
        )
        merged = merged_losses(experts, corpus, x, eval_domains=columns, cfg=cfg)
        estimates[share] = {c: np.array([m[c] for m in merged]) for c in columns}
        rows.append(
            {
                "what": f"merged, trunk {share:.2f}",
                "cost_runs": experts.cost_runs,
                "spearman": {c: _rho(truth[c], estimates[share][c]) for c in columns},
                "seconds": time.perf_counter() - started,
            }
        )
        print(rows[-1], flush=True)
    n_fit = p.fit_runs or len(domains) + 1
    if n_fit + 2 > len(x):
        raise ConfigError(f"{len(x)} trained runs: too few to fit on {n_fit} and rank the rest")
    rng = np.random.default_rng(0)
    fitted: dict[str, dict[str, float]] = {}
    for name in p.surrogates:
        per_column: dict[str, list[float]] = {c: [] for c in columns}
        for _ in range(p.draws):
            chosen = rng.choice(len(x), size=n_fit, replace=False)
            rest = np.setdiff1d(np.arange(len(x)), chosen)
            for c in columns:
                model = make_surrogate(name, random_state=0).fit(x[chosen], truth[c][chosen])
                rho = score(truth[c][rest], model.predict(x[rest]))["spearman"]
                per_column[c].append(0.0 if rho is None else rho)
        fitted[name] = {c: float(np.median(v)) for c, v in per_column.items()}
    best = {c: max(fitted.values(), key=lambda f: f[c])[c] for c in columns}
    rows.append(
        {
            "what": f"best of {', '.join(p.surrogates)} fitted on {n_fit} trained runs",
            "cost_runs": float(n_fit),
            "spearman": best,
            "by_surrogate": fitted,
        }
    )
    prior_values = estimates[p.replay_share][target]
    for label, params in (("BO", {}), (f"BO + merged prior (trunk {p.replay_share:.2f})", None)):
        if params is None:
            prior = LowFidelityPrior(make_surrogate("ensemble", random_state=0))
            params = {"low_fidelity": prior.fit(x, prior_values, domains=domains)}
        started = time.perf_counter()
        result = replay(
            x,
            truth[target],
            domains=domains,
            optimizer="bo",
            budget=min(p.budget, len(x)),
            repeats=p.repeats,
            seed=0,
            optimizer_params=params,
            workers=p.workers,
        )
        s = result["summary"]
        cost = 0.0 if not params else rows[p.shares.index(p.replay_share)]["cost_runs"]
        rows.append(
            {
                "what": f"replay: {label}",
                "target": target,
                "pool": len(x),
                "runs_to_top_median": s["runs_to_top_median"],
                "hit_rate": s["hit_rate"],
                "merge_cost_runs": cost,
                "total_runs": s["runs_to_top_median"] + cost,
                "seconds": time.perf_counter() - started,
            }
        )
        print(rows[-1], flush=True)
    return rows


def _rho(a: Any, b: Any) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _pool_tables(rows: list[dict[str, Any]]) -> list[Any]:
    from benchmarks.suite import table

    ranks = [r for r in rows if "spearman" in r]
    replays = [r for r in rows if "runs_to_top_median" in r]
    merged = [r for r in ranks if r["what"].startswith("merged")]
    fitted = next(r for r in ranks if not r["what"].startswith("merged"))
    for r in merged:
        r["better_columns"] = sum(
            r["spearman"][c] > fitted["spearman"][c] for c in fitted["spearman"]
        )
        r["median_spearman"] = float(sorted(r["spearman"].values())[len(r["spearman"]) // 2])
    fitted["median_spearman"] = float(
        sorted(fitted["spearman"].values())[len(fitted["spearman"]) // 2]
    )
    rank_columns: list[Column] = [
        ("estimate", col("what")),
        ("cost (proxy runs)", col("cost_runs", ".2f")),
        ("median Spearman", col("median_spearman", ".2f")),
        ("columns better than fitted", col("better_columns")),
        ("Spearman per column", _spearmans),
    ]
    replay_columns: list[Column] = [
        ("replay", col("what")),
        ("pool", col("pool")),
        ("target", col("target")),
        ("median trained runs to top 1%", col("runs_to_top_median", "g")),
        ("hit rate", col("hit_rate", ".2f")),
        ("merge cost (runs)", col("merge_cost_runs", ".2f")),
        ("total (runs)", col("total_runs", ".2f")),
    ]
    return [table(ranks, rank_columns), table(replays, replay_columns)]


CASES.append(Case(name="merge_pool", params=PoolParams, run=run_pool, tables=_pool_tables))


class FinetuneParams(PoolParams):
    """Merged experts for continued-training mixtures: a base trained by mixopt on the natural
    mixture, a swarm of continued-training runs from it as the truth, the experts branched from
    the same base (``train.init_from``)."""

    smoke: ClassVar[Mapping[str, Any]] = {
        **PoolParams.smoke,
        "runs": 6,
        "shares": [0.0],
        "replay_share": 0.0,
    }

    experiment: str | None = "runs/demo256"
    """The experiment whose corpus and proxy settings are used; None: a tiny packed sweep."""
    runs: int = 64
    """Continued-training runs of the swarm (mixtures drawn uniformly from the simplex)."""
    finetune_fraction: float = 0.5
    """Continued-training tokens as a share of the proxy's ``train_tokens``."""
    shares: list[float] = [0.0, 0.5]
    replay_share: float = 0.0


def run_finetune(p: FinetuneParams, work: Path) -> list[dict[str, Any]]:
    import numpy as np

    from benchmarks.pack_throughput import experiment_runs
    from proxies.pack import Member, train_pack
    from proxies.runs import RunSpec, RunStore
    from proxies.tokens import TokenCorpus
    from proxies.train import train_model

    store_dir, tokens, _ = experiment_runs(p.experiment, work)
    first = RunSpec.model_validate(RunStore(store_dir).records()[0]["spec"])
    corpus = TokenCorpus.load(tokens)
    domains, columns = list(first.domains), list(first.eval_domains)
    counts = corpus.tokens("train")
    natural = np.array([float(counts[d]) for d in domains])
    base = work / "base"
    cfg = first.train.model_copy(update={"pack": 1})
    started = time.perf_counter()
    train_model(
        corpus,
        train_domains=domains,
        weights=natural / natural.sum(),
        eval_domains=columns,
        cfg=cfg,
        seed=first.seed,
        save_to=base,
    )
    tuned = cfg.model_copy(
        update={
            "init_from": str(base),
            "train_tokens": int(cfg.train_tokens * p.finetune_fraction),
        }
    )
    x = np.random.default_rng(0).dirichlet(np.ones(len(domains)), size=p.runs)
    results = []
    for start in range(0, len(x), 4):
        members = [Member(first.seed, w) for w in x[start : start + 4]]
        results += train_pack(
            corpus, train_domains=domains, members=members, eval_domains=columns, cfg=tuned
        )
    ok = [i for i, r in enumerate(results) if r.status == "ok"]
    print(f"base and {len(ok)} of {p.runs} continued runs: {time.perf_counter() - started:.0f} s")
    truth = {c: np.array([results[i].val_loss[c] for i in ok]) for c in columns}
    pool = Pool(corpus=corpus, cfg=tuned, seed=first.seed, domains=domains, x=x[ok], truth=truth)
    return pool_rows(p, pool)


CASES.append(
    Case(name="merge_finetune", params=FinetuneParams, run=run_finetune, tables=_pool_tables)
)
