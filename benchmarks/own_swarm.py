"""A fresh pool no mixopt choice has seen: 258 proxies of the demo corpus, replayed and fitted.

Every setting of mixopt's surrogates and optimizers was chosen on RegMix's and Olmix's released
runs, and by now every target of those pools has been looked at (benchmarks/replay_generality.py
and its second set), so none of them can say any more whether the shipped defaults generalize.
This script makes a new pool with mixopt itself and tests the shipped defaults on it, unchanged.

The pool (made once, committed with its command in data/mixopt_demo_swarm/SOURCE.md):
``mixopt sweep --config configs/demo.yaml --set sweep.n_runs=256`` on the demo's real-text
corpus: 256 mixtures over the 8 training domains sampled from the demo's prior (Dirichlet around
the token counts, RegMix-style), plus the uniform and natural mixtures, each a micro proxy (the
demo's own proxy: ~0.1M non-embedding parameters, 250k tokens), evaluated on all 9 domains'
validation splits. 258 runs, 8 domains, 9 losses.

Fixed before the pool was trained (2026-11-30, session 9), not to be pruned after:

- targets: each of the 9 validation losses (``val_loss/<domain>``), the held-out ``tech_docs``
  (the demo's target) among them;
- replay: random (exact expectation), ``regmix`` (half the budget random, then the rest in the
  default surrogate's predicted order) and ``bo`` (the shipped defaults: ``gp_hybrid``, 4 random
  runs, one run per round); budget 64, 10 repeats, seed 0; top 1% = the 3 best of 258 runs;
- fit: Spearman x100 on the runs not trained on, train sizes 32 and 128, 3 random subsets, for
  ``ensemble`` (the default), ``regmix_lgbm`` (RegMix's settings), ``lightgbm``, ``ridge`` and
  ``gp_hybrid``.

    .venv/bin/python benchmarks/own_swarm.py          # replay + fit, about 10 minutes, 2 cores

Writes benchmarks/results/own_swarm.json and .md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_generality import replay_case, summary_md, table_md  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load_results,
    run_cases_resumable,
    run_meta,
    write_md,
)
from mixtures.runtable import RunTable  # noqa: E402
from mixtures.surrogates import make_surrogate  # noqa: E402

POOL = ROOT / "data" / "mixopt_demo_swarm" / "runs.parquet"
FIT_SIZES = (32, 128)
FIT_SUBSETS = 3
FIT_SURROGATES = ("ensemble", "regmix_lgbm", "lightgbm", "ridge", "gp_hybrid")


def targets(table: RunTable) -> list[str]:
    """The 9 validation losses, by domain name."""
    return [m.split("/", 1)[1] for m in table.metrics if m.startswith("val_loss/")]


def fit_quality(table: RunTable, expr: str) -> dict[str, dict[str, list[float]]]:
    """Spearman x100 on the runs not trained on, per train size and surrogate."""
    X, y = table.weights(), table.target(expr)
    out: dict[str, dict[str, list[float]]] = {}
    for n in FIT_SIZES:
        out[str(n)] = {name: [] for name in FIT_SURROGATES}
        for rep in range(FIT_SUBSETS):
            order = np.random.default_rng(rep).permutation(len(y))
            train, test = order[:n], order[n:]
            for name in FIT_SURROGATES:
                model = make_surrogate(name, random_state=rep).fit(X[train], y[train])
                out[str(n)][name].append(100 * float(spearmanr(model.predict(X[test]), y[test])[0]))
    return out


def fit_md(rows: list[dict[str, Any]]) -> str:
    def cell(values: list[float]) -> str:  # NaN: constant predictions (no split, no ranking)
        return "n/a" if np.isnan(values).any() else f"{np.mean(values):.1f}"

    head = "| target | train runs | " + " | ".join(FIT_SURROGATES) + " |"
    lines = [head, "|---" * (2 + len(FIT_SURROGATES)) + "|"]
    for r in rows:
        for n, res in r["fit"].items():
            cells = [cell(res[name]) for name in FIT_SURROGATES]
            lines.append(f"| {r['target']} | {n} | " + " | ".join(cells) + " |")
    means = []
    for n in map(str, FIT_SIZES):
        per = {name: cell([v for r in rows for v in r["fit"][n][name]]) for name in FIT_SURROGATES}
        means.append(
            f"| **mean of {len(rows)}** | {n} | "
            + " | ".join(f"**{per[name]}**" for name in FIT_SURROGATES)
            + " |"
        )
    return "\n".join(lines + means)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool", type=Path, default=POOL, help="the swarm's run table")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument("--out", type=Path, default=RESULTS / "own_swarm.json")
    p.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        table = RunTable.read(args.pool)

        def run(pool: str, label: str) -> dict[str, Any]:
            expr = f"val_loss/{label}"
            row = replay_case(table, pool, label, expr, 1, args.repeats, args.seed, args.workers)
            started = time.perf_counter()
            row["fit"] = fit_quality(table, expr)
            row["fit_seconds"] = time.perf_counter() - started
            print(f"{label} fit: {row['fit']} ({row['fit_seconds']:.0f} s)", flush=True)
            return row

        meta, rows = run_cases_resumable(
            args.out,
            [("mixopt_demo_swarm", t) for t in targets(table)],
            run,
            fresh=args.fresh,
            meta=lambda spent: run_meta(
                "own_swarm.py", argv, wall_seconds=spent, repeats=args.repeats
            ),
            settings={"repeats": args.repeats, "seed": args.seed},
        )
    md = (
        header_md("A fresh pool: 258 proxies of the demo corpus", meta)
        + f"Pool: {rows[0]['runs']} runs over {rows[0]['domains']} training domains "
        "(data/mixopt_demo_swarm, made by `mixopt sweep`); target: one validation loss each. "
        f"Replay: {meta['repeats']} repeats per method; saving = random's expected runs to the "
        "top 1% / the method's median; hits = repeats that reached the top 1% within the budget; "
        "ceiling = random's expected runs / the median of an oracle that makes the method's "
        "random start and then runs a top mixture.\n\n"
        + table_md(rows)
        + "\n\n"
        + summary_md(rows)
        + f"\n\nFit: Spearman x100 on the runs not trained on, mean over {FIT_SUBSETS} random "
        "train subsets (n/a: constant predictions, e.g. RegMix's LightGBM settings make no split "
        "below 40 runs):\n\n" + fit_md(rows) + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
