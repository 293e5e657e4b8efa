"""Replay with an earlier swarm as the prior: Olmix's reuse swarm, guided by its 64-domain swarm.

Olmix's third public swarm, ``full_reuse_update_5_seed_0`` (64 runs), varies 21 topic domains of
a new s2pdf version (``s2pdfv1:*``) against one fixed remainder, ``existing``. Cold BO reached its
top run only 1.3-5.0x faster than random there (benchmarks/results/replay_generality.md). Olmix's
own idea is to reuse earlier swarms. The earlier ``full_recomputation`` swarm (512 runs, 64
domains) has the same 21 topics of the older s2pdf (``s2pdf:*``) and the same 110 metrics. Fixed
before any of it was run (2026-11-30):

- Earlier runs projected onto the reuse swarm's domains: ``s2pdf:<topic>`` -> ``s2pdfv1:<topic>``,
  every other domain summed into ``existing``. This is crude on purpose: the s2pdf data changed
  version, and what ``existing`` holds inside differs from the earlier runs' other domains (the
  public CSVs do not say what it is).
- Prior: ``LowFidelityPrior`` with the default ``ensemble``, fitted on the 512 projected runs'
  value of the same target.
- Targets: the reuse swarm's four cases of replay_generality.py (mean of all 110 metrics, and
  the MMLU, code and math means), budget 32, 10 repeats, seed 0.
- Methods: ``bo_lowfi`` (BO defaults with ``low_fidelity``), ``order`` (the pool in the prior's
  predicted order); cold BO and random are read from replay_generality.json (same seeds).
- Cost: none. The earlier swarm was run for its own sake, which is the point of reuse.

``--prior-values shuffled`` (a control added after the run above, when a review found that the
projected prior's Spearman with the reuse targets is near 0: -0.10 for code, +0.07 for the mean)
fits the prior on the earlier runs' values randomly permuted (seed 0), so any gain left is the
prior-ranked 2-run start, not the earlier swarm. Writes results/replay_reuse_shuffled.json.

The Olmix CSVs are not in this repository; benchmarks/replay_public.py says how to get them.

    .venv/bin/python benchmarks/replay_reuse.py --olmix /tmp/olmix  # results/replay_reuse.json, .md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_generality import load_pool, target  # noqa: E402
from benchmarks.replay_transfer import (  # noqa: E402
    perturbed,
    replay_with_prior,
    runs_to_top_in_order,
)
from benchmarks.replay_transfer import saving as transfer_saving  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load_results,
    rows_by_case,
    run_cases_resumable,
    run_meta,
    write_md,
)
from mixtures.runtable import RunTable, domain_map  # noqa: E402

POOL, EARLIER = "full_reuse_update_5_seed_0", "full_recomputation"
TARGETS = ("all", "mmlu", "code", "math")
BUDGET = 32
COLD = RESULTS / "replay_generality.json"


#: How the earlier swarm's domains map onto the reuse swarm's (``mixtures.runtable.domain_map``)
RULES = (("s2pdf:*", "s2pdfv1:*"), ("*", "existing"))


def project(earlier: RunTable, domains: tuple[str, ...]) -> np.ndarray:
    """The earlier runs' weights over the reuse swarm's ``domains`` (module doc): (n, d)."""
    return earlier.weights() @ domain_map(earlier.domains, domains, RULES)


def run_case(
    table: RunTable,
    earlier: RunTable,
    label: str,
    cold: dict[tuple[str, str], dict[str, Any]],
    repeats: int,
    seed: int,
    workers: int,
    prior_values: str = "as_is",
) -> dict[str, Any]:
    expr, n_metrics = target(table, POOL, label)
    X, y = table.weights(), table.target(expr)
    prior, fields = replay_with_prior(
        f"{POOL} {label}",
        X,
        y,
        table.domains,
        project(earlier, table.domains),
        perturbed(earlier.target(expr), prior_values),
        budget=BUDGET,
        repeats=repeats,
        seed=seed,
        workers=workers,
    )
    return {
        "pool": POOL,
        "target": label,
        "metrics": n_metrics,
        "runs": len(y),
        "domains": len(table.domains),
        "budget": BUDGET,
        "prior_values": prior_values,
        **fields,
        "order": runs_to_top_in_order(prior.transform(X), y, fields["top"]),
        "bo_cold": cold[(POOL, label)]["bo"],
    }


def saving(row: dict[str, Any], runs: float) -> float:
    """``replay_transfer.saving`` without a cost; 0 when the top run was not reached."""
    return transfer_saving(row, runs, with_cost=False) or 0.0


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| target (metrics) | random: expected | cold bo: median (saving) | order of the prior "
        "| bo + the prior: median (saving) | per repeat | the prior's Spearman with the pool |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cold, lowfi = r["bo_cold"]["median"], r["bo_lowfi"]["median"]
        per = " ".join("-" if h is None else str(h) for h in r["bo_lowfi"]["per_repeat"])
        lines.append(
            f"| {r['target']} ({r['metrics']}) | {r['random_mean']:.1f} "
            f"| {cold:g} ({saving(r, cold):.1f}x) | {r['order']} "
            f"| {lowfi:g} ({saving(r, lowfi):.1f}x) | {per} "
            f"| {r['prior_spearman']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--olmix", type=Path, help="folder with Olmix's swarm CSVs")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument("--prior-values", choices=("as_is", "shuffled"), default="as_is")
    p.add_argument("--out", type=Path, help="default: results/replay_reuse[_shuffled].json")
    p.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.out is None:
        suffix = "" if args.prior_values == "as_is" else f"_{args.prior_values}"
        args.out = RESULTS / f"replay_reuse{suffix}.json"
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        table, earlier = load_pool(POOL, args.olmix), load_pool(EARLIER, args.olmix)
        cold = rows_by_case(COLD)

        def run(pool: str, label: str) -> dict[str, Any]:
            return run_case(
                table,
                earlier,
                label,
                cold,
                args.repeats,
                args.seed,
                args.workers,
                args.prior_values,
            )

        meta, rows = run_cases_resumable(
            args.out,
            [(POOL, label) for label in TARGETS],
            run,
            fresh=args.fresh,
            meta=lambda spent: run_meta(
                "replay_reuse.py", argv, wall_seconds=spent, repeats=args.repeats
            ),
            settings={
                "repeats": args.repeats,
                "seed": args.seed,
                "prior_values": args.prior_values,
            },
        )
    lowfi = [saving(r, r["bo_lowfi"]["median"]) for r in rows]
    cold_savings = [saving(r, r["bo_cold"]["median"]) for r in rows]
    md = (
        header_md(
            "Replay with an earlier swarm as the prior (Olmix's reuse swarm)"
            + (", control: values permuted" if rows[0].get("prior_values") == "shuffled" else ""),
            meta,
        )
        + f"{meta['repeats']} repeats; {POOL}: 64 runs, top 1% = its best run, budget {BUDGET}. "
        f"Prior: the default ensemble on {EARLIER}'s 512 runs, projected onto the reuse swarm's "
        "domains (benchmarks/replay_reuse.py says how). Order = the position of the top run in "
        "the prior's predicted order. Cold bo: replay_generality.json (same seeds). Olmix data: "
        "allenai/olmix (Apache-2.0) at 6df202e^, not in this repository.\n\n"
        + table_md(rows)
        + f"\n\n- bo + prior: median saving {statistics.median(lowfi):.1f}x "
        f"(range {min(lowfi):.1f}-{max(lowfi):.1f}x); cold bo: "
        f"{statistics.median(cold_savings):.1f}x ({min(cold_savings):.1f}-"
        f"{max(cold_savings):.1f}x)\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
