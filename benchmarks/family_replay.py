"""Prototype: BO with one GP per task family, replayed on Olmix's swarms (not in mixopt yet).

benchmarks/family_cv.py found that summing per-family GPs ranks held-out runs better than one GP
on the 110-metric mean on two of Olmix's three swarms. This asks whether that carries over to the
search: the same BO as the optimizer's default (``gp_hybrid``, 4 random runs, q = 1, the same
seeds as ``mixtures.evaluation.replay``, so the 4 random runs are identical), except that the
acquisition (qLogNoisyExpectedImprovement) sees a ``ModelListGP`` of one GP per family, scored
by an MC objective that undoes each GP's log transform and takes the share-weighted sum, i.e.
the mean of the 110 metrics. The optimizer is told the mean, as the default one is; the
prototype reads each proposal's family values from the pool. It runs through
``mixtures.evaluation.replay``, which takes an optimizer class as well as a name. Compare its
runs to the top 1% with the ``bo_hybrid`` column of benchmarks/results/replay_public.md (same
target and seeds).

    .venv/bin/python benchmarks/family_replay.py --olmix /tmp/olmix   # about 30 minutes

Writes benchmarks/results/family_replay.json and .md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from botorch.acquisition.logei import qLogNoisyExpectedImprovement  # noqa: E402
from botorch.acquisition.objective import GenericMCObjective  # noqa: E402
from botorch.models import ModelListGP  # noqa: E402
from botorch.optim import optimize_acqf_discrete  # noqa: E402
from botorch.sampling import SobolQMCNormalSampler  # noqa: E402

from benchmarks.family_cv import family_targets  # noqa: E402
from benchmarks.replay_generality import load_pool  # noqa: E402
from benchmarks.replay_public import replay_figures  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load_results,
    run_meta,
    save_results,
    write_md,
)
from mixtures.evaluation import random_runs_to_top  # noqa: E402
from mixtures.optimizers.bo import BOOptimizer  # noqa: E402
from mixtures.surrogates import make_surrogate  # noqa: E402
from mixtures.surrogates.base import featurize  # noqa: E402
from mixtures.surrogates.gp import torch_threads  # noqa: E402

POOLS = ("dclm", "full_recomputation")


class FamilyBO(BOOptimizer):
    """BO whose acquisition models each family separately (pool mode, minimizing only)."""

    def __init__(self, *, family_values: np.ndarray, shares: np.ndarray, **kw: Any) -> None:
        super().__init__(**kw)
        self.family_values = family_values  # (pool rows, families)
        self.shares = shares  # (families,), sums to 1

    def _choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        if self.n_observations < self.n_init:
            return super()._choose(n, candidates)
        X, _ = self.observed_arrays()
        rows = [self.pool_index(self._mixture(x)) for x in X]
        models = [
            make_surrogate(self.surrogate, random_state=self.seed).fit(
                X, self.family_values[rows, j]
            )
            for j in range(len(self.shares))
        ]
        logs = torch.tensor([m.target_transform_.log for m in models])
        shares = torch.as_tensor(self.shares, dtype=torch.float64)

        def minus_mean(samples: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
            values = torch.where(logs, samples.exp(), samples)  # (..., families)
            return -(values * shares).sum(-1)

        features = models[0].features
        feats = torch.as_tensor(featurize(candidates, features), dtype=torch.float64)
        baseline = torch.as_tensor(featurize(X, features), dtype=torch.float64)
        with torch.random.fork_rng(), torch_threads(models[0].threads):
            torch.manual_seed(self.seed)
            acq = qLogNoisyExpectedImprovement(
                model=ModelListGP(*[m.model_ for m in models]),
                X_baseline=baseline,
                sampler=SobolQMCNormalSampler(
                    sample_shape=torch.Size([self.mc_samples]), seed=self.seed
                ),
                objective=GenericMCObjective(minus_mean),
                prune_baseline=True,
            )
            picked, _ = optimize_acqf_discrete(acq, q=n, choices=feats, unique=True)
        lookup = {tuple(row.tolist()): i for i, row in enumerate(feats)}
        return np.array([lookup[tuple(row.tolist())] for row in picked], dtype=int)


def run(olmix: Path, pools: list[str], repeats: int, seed: int, workers: int) -> list[dict]:
    rows = []
    for pool in pools:
        table = load_pool(pool, olmix)
        _, Y, shares, y = family_targets(table)
        row = {
            "pool": pool,
            "runs": len(y),
            "domains": len(table.domains),
            "random_mean": random_runs_to_top(len(y), math.ceil(0.01 * len(y)))[0],
        }
        row |= replay_figures(
            pool,
            table.weights(),
            y,
            domains=table.domains,
            optimizer=FamilyBO,
            budget=64,
            repeats=repeats,
            seed=seed,
            optimizer_params={"family_values": Y, "shares": shares},
            workers=workers,
        )
        rows.append(row)
    return rows


def table_md(rows: list[dict[str, Any]], reference: dict[str, Any]) -> str:
    lines = [
        "| pool | random: expected | bo, one GP on the mean (replay_public) | bo, per-family GPs "
        "| repeats where per-family needs fewer / more runs |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ref = reference.get(r["pool"])
        ref_cell, paired = "n/a", "n/a"
        if ref is not None:
            ref_cell = f"{ref['median']:g} ({r['random_mean'] / ref['median']:.1f}x)"
            a = [65 if h is None else h for h in r["per_repeat"]]
            # SeedSequence.spawn(k) gives the first k children of spawn(10): pair repeat by repeat
            b = [65 if h is None else h for h in ref["per_repeat"][: len(a)]]
            fewer = sum(x < z for x, z in zip(a, b, strict=True))
            more = sum(x > z for x, z in zip(a, b, strict=True))
            paired = f"{fewer} / {more}"
        lines.append(
            f"| {r['pool']} | {r['random_mean']:.1f} | {ref_cell} "
            f"| {r['median']:g} ({r['random_mean'] / r['median']:.1f}x) | {paired} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--olmix", type=Path, help="folder with Olmix's swarm CSVs")
    p.add_argument("--pools", default=",".join(POOLS))
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument("--out", type=Path, default=RESULTS / "family_replay.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        started = time.perf_counter()
        rows = run(args.olmix, args.pools.split(","), args.repeats, args.seed, args.workers)
        meta = run_meta(
            "family_replay.py",
            argv,
            wall_seconds=time.perf_counter() - started,
            repeats=args.repeats,
        )
        save_results(args.out, meta, rows)
    _, public = load_results(RESULTS / "replay_public.json")
    reference = {r["pool"]: r["bo_hybrid"] for r in public if "bo_hybrid" in r}
    md = (
        header_md("BO with per-family GPs on Olmix's swarms (prototype)", meta)
        + f"Target: the mean of the 110 metrics; {meta['repeats']} repeats, budget 64, the "
        "same seeds (and so the same 4 random runs) as replay_public's `bo_hybrid`. Median runs "
        "to the top 1% (saving against random's expected runs).\n\n"
        + table_md(rows, reference)
        + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
