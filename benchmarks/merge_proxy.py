"""Linear model merging as a proxy, against trained proxies of the same mixtures.

The experts (``proxies.merge``: a shared trunk on the uniform mixture for a share of the proxy
budget, then one branch per training domain) are trained with an experiment's proxy settings;
the merged model of each of the experiment's trained mixtures is evaluated, and its validation
losses are ranked against the trained runs' (Spearman per domain). The cost is in proxy-run
equivalents (training steps over one run's).
"""

from __future__ import annotations

from collections.abc import Mapping
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
