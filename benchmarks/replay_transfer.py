"""Replay with a low-fidelity prior: does a cheap 1M swarm cut the runs needed at 60M and 1B?

RegMix's premise is that mixtures rank alike at 1M and at 1B parameters; ADMIRE-BayesOpt searches
across fidelities. This script measures what that buys the BO optimizer on RegMix's two larger
pools, whose cold-start replays are in benchmarks/results/replay_scales.md (BO's 4 random runs cap
its saving there at 6.5x on the 64-run 1B pool). Fixed before any of it was run (2026-11-30):

- Cheap runs: RegMix's 512 training runs at 1M parameters (1B tokens each), the runs RegMix
  fits its regression on. The 768-run pool is not used: its other 256 runs are the very mixtures
  of the 60M pool.
- Prior: ``LowFidelityPrior`` with the library's default surrogate (``ensemble``), fitted on
  the 512 runs' value of the same loss as the target.
- Pools and targets: ``regmix1b`` (64 runs, budget 32) and ``regmix60m`` (256 runs, budget 64),
  all 13 validation losses each, as in ``replay_generality.py --set scales``.
- Methods:
  - ``bo_lowfi``: the BO optimizer's defaults with ``low_fidelity`` given (``gp_hybrid``, q = 1;
    its first 2 runs are the pool members the prior ranks best), 10 repeats, seed 0;
  - ``order_ensemble`` and ``order_regmix_lgbm``: no search at the target scale, the pool run in
    the order a surrogate fitted on the 512 cheap runs predicts (the default ensemble, and
    LightGBM with RegMix's released settings): RegMix's own transfer, deterministic;
  - ``bo`` (cold start) and random are read from replay_scales.json (same seeds), not rerun.
- Cost: a 1M run on 1B tokens is 1/25000 of a 1B run on 25B tokens (parameters x tokens) and
  1/60 of a 60M run on 1B tokens, so the 512 cheap runs cost 0.02 of a 1B run and 8.5 of a
  60M run. The report gives the saving over random with and without that cost.

    .venv/bin/python benchmarks/replay_transfer.py   # writes results/replay_transfer.json, .md

Results are saved after each case; a rerun skips the finished ones (``--fresh`` starts over).

``--prior-values shuffled|negated`` (added after the run above, which showed one loss where the
prior misled BO: Ubuntu IRC at 1B, 19 runs against cold BO's 7) measures the downside on the
same cases: the prior is fitted on the cheap runs' values randomly permuted (seed 0: a prior
that knows nothing) or negated (one that ranks best what is worst). Writes
results/replay_transfer_<variant>.json and .md.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_generality import REGMIX_ALL, REPORTED_BO_GP, load_pool  # noqa: E402
from benchmarks.replay_public import replay_figures  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load,
    load_results,
    rows_by_case,
    run_cases_resumable,
    run_meta,
    write_md,
)
from mixtures.evaluation import random_runs_to_top  # noqa: E402
from mixtures.runtable import RunTable  # noqa: E402
from mixtures.surrogates import make_surrogate  # noqa: E402
from mixtures.surrogates.transfer import LowFidelityPrior  # noqa: E402

#: pool -> (budget, what one cheap 1M run costs in runs of the pool's scale)
POOLS = {"regmix1b": (32, 1 / 25_000), "regmix60m": (64, 1 / 60)}
CHEAP_FILES = ("train_mixture_1m.csv", "train_pile_loss_1m.csv")
ORDER_SURROGATES = ("ensemble", "regmix_lgbm")
COLD = RESULTS / "replay_scales.json"


TITLES = {
    "as_is": "Replay with a low-fidelity prior (512 RegMix runs at 1M)",
    "shuffled": "Replay with a prior that knows nothing (the 512 cheap values permuted)",
    "negated": "Replay with a misleading prior (the 512 cheap values negated)",
}


def cases() -> list[tuple[str, str]]:
    """(pool, loss) in the fixed order: every loss on the 1B pool, then on the 60M pool."""
    return [(pool, label) for pool in POOLS for label in REGMIX_ALL]


def runs_to_top_in_order(pred: np.ndarray, y: np.ndarray, top: int) -> int:
    """1-based position of the first top-``top`` pool run when the pool is run in the order of
    ``pred`` (lowest first; ties by index)."""
    best = set(np.argsort(y, kind="stable")[:top].tolist())
    order = np.argsort(pred, kind="stable")
    return next(i + 1 for i, j in enumerate(order) if int(j) in best)


def perturbed(values: np.ndarray, prior_values: str) -> np.ndarray:
    """The cheap values a prior is fitted on: as they are, permuted (seed 0) or negated
    (reflected about their mean: still positive, so the log scale stays; order reversed)."""
    if prior_values == "shuffled":
        return np.random.default_rng(0).permutation(values)
    if prior_values == "negated":
        return 2 * values.mean() - values
    return values


def replay_with_prior(
    label: str,
    X: np.ndarray,
    y: np.ndarray,
    domains: tuple[str, ...],
    Xc: np.ndarray,
    yc: np.ndarray,
    *,
    budget: int,
    repeats: int,
    seed: int,
    workers: int,
) -> tuple[LowFidelityPrior, dict[str, Any]]:
    """The default-ensemble prior fitted on the cheap runs ``Xc``, ``yc`` and BO replayed with
    it on the pool ``X``, ``y``: the fields every row of a transfer benchmark has. Besides the
    replay: random's expectation, the fit time, the prior's Spearman with the pool's values, the
    pool ranks of BO's 2 prior-chosen first runs and how far the better of them is above the
    pool's best (the pool's span beside it)."""
    top = math.ceil(0.01 * len(y))
    mean, median = random_runs_to_top(len(y), top)
    started = time.perf_counter()
    prior = LowFidelityPrior("ensemble", random_state=seed).fit(Xc, yc, domains=domains)
    fit_seconds = time.perf_counter() - started
    z = prior.transform(X)
    first = np.argsort(z, kind="stable")[:2]  # BO's initial design with a prior (minimizing)
    rank = np.empty(len(y), dtype=int)
    rank[np.argsort(y, kind="stable")] = np.arange(1, len(y) + 1)
    fields = {
        "top": top,
        "random_mean": mean,
        "random_median": median,
        "prior_fit_seconds": fit_seconds,
        "prior_spearman": float(spearmanr(z, y)[0]),
        "first_picks": rank[first].tolist(),
        "first_picks_gap": float(y[first].min() - y.min()),
        "pool_span": float(y.max() - y.min()),
        "bo_lowfi": replay_figures(
            f"{label} bo_lowfi",
            X,
            y,
            domains=domains,
            optimizer="bo",
            budget=budget,
            repeats=repeats,
            seed=seed,
            batch=1,
            optimizer_params={"low_fidelity": prior, "surrogate": REPORTED_BO_GP},
            workers=workers,
        ),
    }
    return prior, fields


def run_case(
    table: RunTable,
    cheap: RunTable,
    pool: str,
    label: str,
    cold: dict[tuple[str, str], dict[str, Any]],
    repeats: int,
    seed: int,
    workers: int,
    prior_values: str = "as_is",
) -> dict[str, Any]:
    metric = f"metric/the_pile_{label}_val_loss"
    X, y = table.weights(), table.target(metric)
    Xc = cheap.weights(table.domains)
    yc = perturbed(cheap.target(metric), prior_values)
    budget, unit = POOLS[pool]
    prior, fields = replay_with_prior(
        f"{pool} {label}",
        X,
        y,
        table.domains,
        Xc,
        yc,
        budget=budget,
        repeats=repeats,
        seed=seed,
        workers=workers,
    )
    row: dict[str, Any] = {
        "pool": pool,
        "target": label,
        "runs": len(y),
        "domains": len(table.domains),
        "budget": budget,
        "cheap_runs": len(yc),
        "cheap_cost": len(yc) * unit,
        "prior_values": prior_values,
        **fields,
    }
    for name in ORDER_SURROGATES:
        model = prior.model_ if name == "ensemble" else make_surrogate(name, random_state=seed)
        if name != "ensemble":
            model.fit(Xc, yc)
        row[f"order_{name}"] = runs_to_top_in_order(model.predict(X), y, top=row["top"])
    row["bo_cold"] = cold[(pool, label)]["bo"]
    print(
        f"{pool} {label}: order ensemble {row['order_ensemble']}, regmix_lgbm "
        f"{row['order_regmix_lgbm']}; cold bo {row['bo_cold']['median']:g}",
        flush=True,
    )
    return row


def saving(row: dict[str, Any], runs: float, *, with_cost: bool) -> float | None:
    """Random's expected runs over ``runs`` (plus the cheap swarm's cost in target runs)."""
    if runs > row["budget"]:
        return None
    return row["random_mean"] / (runs + (row["cheap_cost"] if with_cost else 0.0))


def _fmt(s: float | None) -> str:
    return "not reached" if s is None else f"{s:.1f}x"


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pool | loss | random: expected | cold bo: median (saving) | order, ensemble | "
        "order, regmix_lgbm | bo + low-fidelity prior: median (saving; with the cheap runs' "
        "cost) | per repeat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cold, lowfi = r["bo_cold"]["median"], r["bo_lowfi"]["median"]
        lines.append(
            f"| {r['pool']} | {r['target']} | {r['random_mean']:.1f} "
            f"| {cold:g} ({_fmt(saving(r, cold, with_cost=False))}) "
            f"| {r['order_ensemble']} | {r['order_regmix_lgbm']} "
            f"| {lowfi:g} ({_fmt(saving(r, lowfi, with_cost=False))}; "
            f"{_fmt(saving(r, lowfi, with_cost=True))}) "
            f"| {' '.join('-' if h is None else str(h) for h in r['bo_lowfi']['per_repeat'])} |"
        )
    return "\n".join(lines)


def summary_md(rows: list[dict[str, Any]]) -> str:
    out = []
    for pool in POOLS:
        part = [r for r in rows if r["pool"] == pool]
        if not part:
            continue
        cost = part[0]["cheap_cost"]
        figures = {
            "cold bo": [saving(r, r["bo_cold"]["median"], with_cost=False) or 0.0 for r in part],
            "order, ensemble": [
                saving(r, r["order_ensemble"], with_cost=False) or 0.0 for r in part
            ],
            "order, regmix_lgbm": [
                saving(r, r["order_regmix_lgbm"], with_cost=False) or 0.0 for r in part
            ],
            "bo + prior": [
                saving(r, r["bo_lowfi"]["median"], with_cost=False) or 0.0 for r in part
            ],
            "bo + prior, counting the cheap runs": [
                saving(r, r["bo_lowfi"]["median"], with_cost=True) or 0.0 for r in part
            ],
        }
        out.append(
            f"- {pool} ({len(part)} losses; the 512 cheap runs cost {cost:.2g} of a run at this "
            "scale; a top-1% run not reached within the budget counts as a saving of 0):"
        )
        for name, vals in figures.items():
            ten = sum(v >= 10 for v in vals)
            out.append(
                f"  - {name}: median saving {statistics.median(vals):.1f}x "
                f"(range {min(vals):.1f}-{max(vals):.1f}x), >= 10x on {ten} of {len(vals)}"
            )
        rhos = [r["prior_spearman"] for r in part if "prior_spearman" in r]
        if rhos:
            out.append(
                f"  - the prior's Spearman with the pool's values: median "
                f"{statistics.median(rhos):.2f} (range {min(rhos):.2f}-{max(rhos):.2f})"
            )
        for r in part:
            if "first_picks" in r and r["order_ensemble"] > 2:
                out.append(
                    f"  - {r['target']} (the prior's Spearman {r['prior_spearman']:.2f}): the "
                    "prior's first 2 picks are the pool's "
                    f"{' and '.join(str(k) for k in r['first_picks'])} best; the better is "
                    f"{r['first_picks_gap']:.3f} above the best (the pool spans "
                    f"{r['pool_span']:.3f})"
                )
        better = sum(r["bo_lowfi"]["median"] < r["bo_cold"]["median"] for r in part)
        worse = sum(r["bo_lowfi"]["median"] > r["bo_cold"]["median"] for r in part)
        out.append(f"  - bo + prior against cold bo: fewer runs on {better}, more on {worse}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument(
        "--prior-values",
        choices=("as_is", "shuffled", "negated"),
        default="as_is",
        help="the cheap runs' values the prior is fitted on (module doc)",
    )
    p.add_argument("--out", type=Path, help="default: results/replay_transfer[_variant].json")
    p.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.out is None:
        suffix = "" if args.prior_values == "as_is" else f"_{args.prior_values}"
        args.out = RESULTS / f"replay_transfer{suffix}.json"
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        cold = rows_by_case(COLD)
        cheap = load(*CHEAP_FILES)
        tables: dict[str, RunTable] = {}

        def run(pool: str, label: str) -> dict[str, Any]:
            if pool not in tables:
                tables[pool] = load_pool(pool, None)
            return run_case(
                tables[pool],
                cheap,
                pool,
                label,
                cold,
                args.repeats,
                args.seed,
                args.workers,
                args.prior_values,
            )

        meta, rows = run_cases_resumable(
            args.out,
            cases(),
            run,
            fresh=args.fresh,
            meta=lambda spent: run_meta(
                "replay_transfer.py", argv, wall_seconds=spent, repeats=args.repeats
            ),
            settings={
                "repeats": args.repeats,
                "seed": args.seed,
                "prior_values": args.prior_values,
            },
        )
    md = (
        header_md(TITLES[rows[0].get("prior_values", "as_is")], meta)
        + f"{meta['repeats']} repeats of bo + prior; saving = random's expected runs to the "
        "top 1% / the method's median (\"with the cheap runs' cost\": / (median + the 512 "
        "runs' cost in runs at the pool's scale)). Order = the pool run in the order a "
        "surrogate fitted on the 512 cheap runs predicts: the position of the first top-1% "
        "run. Cold bo: replay_scales.json (4 random runs first, same seeds).\n\n"
        + table_md(rows)
        + "\n\n"
        + summary_md(rows)
        + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
