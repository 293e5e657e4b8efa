"""Optimizer replay on public pools: how many runs each search method needs to find a top mixture.

Each method runs in pool mode (``mixtures.evaluation.replay``): it may only propose mixtures of
the pool, and a proposal's result is looked up instead of trained, so the search is measured on
real runs at no training cost. Per (pool, target, method): runs until one of the pool's top 1 %
has been run (median over repeats, misses counted as budget + 1), the saving over random search
(its exact expected runs / the median) and the ceiling on that saving left by the method's
uniform random start, and the simple regret after 16 runs.

Methods, with the product's defaults: ``bo`` (4 random runs, then one run per round chosen by the
default GP) and ``regmix`` (half the budget random, then the rest in the default surrogate's
predicted order, RegMix's one shot). Budget 64, or half the pool on pools of 64 runs or fewer.

``replay``: RegMix's 768-run pool on Pile-CC, the headline target (one tenth of random's runs).
``replay_swarms``: the three demo-corpus swarms in data/, every validation loss, BO only.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from benchmarks.pools import PoolName, load_pool, pool_targets
from benchmarks.suite import Case, Column, Params, Table, col, one_table, table

Method = Literal["bo", "regmix"]


class ReplayParams(Params):
    """Runs to the top 1% of RegMix's 768-run pool (Pile-CC): BO and RegMix against random."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "pools": ["regmix1b"],
        "regmix_surrogate": "ridge",
        "repeats": 1,
        "budget": 8,
        "workers": 1,
    }

    pools: list[PoolName] = ["regmix768"]
    targets: list[str] | None = ["pile_cc"]
    """Validation losses by short name; None: every loss of each pool."""
    methods: list[Method] = ["bo", "regmix"]
    bo_surrogate: str | None = None
    """BO's GP (None: the optimizer's default)."""
    regmix_surrogate: str | None = None
    """RegMix's surrogate (None: the optimizer's default)."""
    repeats: int = Field(20, ge=1)
    budget: int = Field(64, ge=2)
    """Runs per repeat; at most half the pool on pools of 64 runs or fewer."""
    seed: int = 0
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    """Processes for the repeats; the figures do not depend on it."""


class SwarmParams(ReplayParams):
    """BO's runs to the top 1% on the three demo-corpus swarms, every validation loss."""

    smoke: ClassVar[Mapping[str, Any]] = {
        "pools": ["demo_swarm"],
        "targets": ["legal"],
        "repeats": 1,
        "budget": 8,
        "workers": 1,
    }

    pools: list[PoolName] = ["demo_swarm", "heldout_code_python_swarm", "heldout_dialogue_swarm"]
    targets: list[str] | None = None
    methods: list[Method] = ["bo"]
    repeats: int = Field(10, ge=1)


def budget_for(pool_size: int, budget: int) -> int:
    return budget if pool_size > 64 else min(budget, pool_size // 2)


def method_args(method: str, budget: int, p: ReplayParams) -> dict[str, Any]:
    """``replay``'s optimizer arguments for a method, on top of the product's defaults."""
    if method == "bo":
        gp = {"surrogate": p.bo_surrogate} if p.bo_surrogate else {}
        return {"optimizer": "bo", "batch": 1, "optimizer_params": gp}
    params: dict[str, Any] = {"n_init": budget // 2}
    if p.regmix_surrogate:
        params["surrogate"] = p.regmix_surrogate
    return {"optimizer": "regmix", "batch": None, "optimizer_params": params}


def replay_row(table: Any, metric: str, method: str, p: ReplayParams) -> dict[str, Any]:
    from mixtures.evaluation import replay

    y = table.target(metric)
    budget = budget_for(len(y), p.budget)
    started = time.perf_counter()
    res = replay(
        table.weights(),
        y,
        domains=table.domains,
        budget=budget,
        repeats=p.repeats,
        seed=p.seed,
        workers=p.workers,
        **method_args(method, budget, p),
    )
    s = res["summary"]
    return {
        "method": method,
        "runs": len(y),
        "domains": len(table.domains),
        "top": res["top_runs"],
        "budget": budget,
        "repeats": p.repeats,
        "random_mean": s["random_expected_mean"],
        "median": s["runs_to_top_median"],
        "mean": s["runs_to_top_mean"],
        "hit_rate": s["hit_rate"],
        "saving": s["saving"],
        "saving_ceiling": s["saving_ceiling"],
        "regret_16": s["regret_median"].get("16"),
        "per_repeat": [r["runs_to_top"] for r in res["per_repeat"]],
        "wall_seconds": time.perf_counter() - started,
    }


def run(p: ReplayParams, work: Path) -> list[dict[str, Any]]:
    rows = []
    for pool in p.pools:
        table = load_pool(pool)
        for label, metric in pool_targets(table, p.targets).items():
            for method in p.methods:
                row = {"pool": pool, "target": label, **replay_row(table, metric, method, p)}
                print(
                    f"{pool} {label} {method}: median {row['median']:g} runs to the top 1%, "
                    f"{row['wall_seconds']:.0f} s",
                    flush=True,
                )
                rows.append(row)
    return rows


def times(x: float) -> str:
    """A saving rounded down (9.96x shows as 9.9x: it is not one tenth of random's runs)."""
    return f"{math.floor(10 * x + 1e-9) / 10:.1f}x"


def _saving(r: dict[str, Any]) -> str:
    saving = "not reached" if r["saving"] is None else times(r["saving"])
    return f"{saving} ({times(r['saving_ceiling'])})"


COLUMNS: list[Column] = [
    ("pool (runs, domains)", lambda r: f"{r['pool']} ({r['runs']}, {r['domains']})"),
    ("target", col("target")),
    ("method", lambda r: f"{r['method']}, {r['repeats']} repeats"),
    ("random: expected runs", col("random_mean", ".1f")),
    ("median runs to top 1% (mean)", lambda r: f"{r['median']:g} ({r['mean']:.1f})"),
    ("hit rate", col("hit_rate", ".0%")),
    ("saving (ceiling)", _saving),
    ("regret@16", col("regret_16", ".4f")),
    ("wall s", col("wall_seconds", ".0f")),
]


def pool_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per pool: the targets' median saving (a miss counts as 0), how many reach one tenth of
    random's runs, and the lowest ceiling the random start leaves."""
    out = []
    for pool in dict.fromkeys(r["pool"] for r in rows):
        mine = [r for r in rows if r["pool"] == pool]
        savings = [r["saving"] or 0.0 for r in mine]
        out.append(
            {
                "pool": pool,
                "targets": len(mine),
                "median_saving": statistics.median(savings),
                "tenfold": sum(s >= 10 for s in savings),
                "ceiling": min(r["saving_ceiling"] for r in mine),
            }
        )
    return out


SUMMARY_COLUMNS: list[Column] = [
    ("pool", col("pool")),
    ("targets", col("targets")),
    ("median saving", lambda r: times(r["median_saving"])),
    ("targets at 10x or more", col("tenfold")),
    ("ceiling of the random start", lambda r: times(r["ceiling"])),
]


def swarm_tables(rows: list[dict[str, Any]]) -> list[Table]:
    """The per-pool summary, then every target's line."""
    return [table(pool_summary(rows), SUMMARY_COLUMNS), table(rows, COLUMNS)]


CASES = [
    Case(name="replay", params=ReplayParams, run=run, tables=one_table(COLUMNS)),
    Case(name="replay_swarms", params=SwarmParams, run=run, tables=swarm_tables),
]
