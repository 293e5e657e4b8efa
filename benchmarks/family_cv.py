"""Does a sum of per-task-family GPs rank mixtures better than one GP on the averaged target?

Olmix's swarms score each run on 110 bits-per-byte metrics, and the target of
benchmarks/replay_public.py is their mean. Code, math and MMLU metrics respond to different
domains, so one GP on the mean has to fit one set of length scales to all of them. This script
fits, on the same training runs, (a) the surrogate on the mean and (b) one surrogate per task
family (the families of benchmarks/replay_generality.py, everything else as "other") whose
predictions are summed with the family's share of the 110 metrics (the sum equals the mean
exactly on the training data). Both are scored by Spearman x100 on the runs not trained on,
over 4 random subsets per train size. Exploratory: nothing in mixopt uses it yet.

    .venv/bin/python benchmarks/family_cv.py --olmix /tmp/olmix   # about 10 minutes, 2 cores

Writes benchmarks/results/family_cv.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_generality import FAMILIES, OLMIX_POOLS, load_pool  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load_results,
    run_meta,
    save_results,
    write_md,
)
from mixtures.runtable import RunTable  # noqa: E402
from mixtures.surrogates import make_surrogate  # noqa: E402

#: train sizes per pool (about a quarter and a half of the smallest pool, 1/8 and 1/4 of the rest)
SIZES = {"dclm": (32, 64), "full_recomputation": (32, 64), "full_reuse_update_5_seed_0": (16, 32)}


def family(metric: str) -> str:
    return next((name for name, member in FAMILIES.items() if member(metric)), "other")


def family_targets(table: RunTable) -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """Metrics per family, the family means ``Y`` (runs, families, families sorted by name),
    each family's share of the metrics, and the mean of all metrics (``Y @ shares``)."""
    metrics = np.stack([table.values("metric", m) for m in table.metrics], axis=1)
    names = sorted({family(m) for m in table.metrics})
    member = np.array([[family(m) == f for m in table.metrics] for f in names])  # (fam, metric)
    Y = np.stack([metrics[:, row].mean(axis=1) for row in member], axis=1)
    counts = member.sum(axis=1)
    return (
        dict(zip(names, counts.tolist(), strict=True)),
        Y,
        counts / len(table.metrics),
        metrics.mean(axis=1),
    )


def fit_predict(
    target: np.ndarray,
    X: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    surrogate: str,
    seed: int,
) -> np.ndarray:
    """The surrogate fitted on the train rows, predicting the test rows."""
    model = make_surrogate(surrogate, random_state=seed).fit(X[train], target[train])
    return model.predict(X[test])


def run_pool(pool: str, olmix: Path, surrogate: str, subsets: int) -> list[dict[str, Any]]:
    table = load_pool(pool, olmix)
    X = table.weights()
    sizes, Y, share, y = family_targets(table)
    rows = []
    for n in SIZES[pool]:
        one, summed = [], []
        for rep in range(subsets):
            order = np.random.default_rng(rep).permutation(len(y))
            train, test = order[:n], order[n:]
            split = (X, train, test, surrogate, rep)
            one.append(100 * spearmanr(fit_predict(y, *split), y[test])[0])
            pred = sum(w * fit_predict(Y[:, j], *split) for j, w in enumerate(share))
            summed.append(100 * spearmanr(pred, y[test])[0])
        rows.append(
            {
                "pool": pool,
                "runs": len(y),
                "domains": len(table.domains),
                "families": sizes,
                "train": n,
                "one": one,
                "summed": summed,
            }
        )
        print(f"{pool} N={n}: one {np.mean(one):.1f} {np.round(one, 1)}", flush=True)
        print(f"{pool} N={n}: per-family sum {np.mean(summed):.1f} {np.round(summed, 1)}")
    return rows


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pool | runs / domains | train runs | one GP on the mean | sum of per-family GPs "
        "| subsets where the sum ranks better |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        better = sum(s > o for s, o in zip(r["summed"], r["one"], strict=True))
        lines.append(
            f"| {r['pool']} | {r['runs']} / {r['domains']} | {r['train']} "
            f"| {np.mean(r['one']):.1f} | {np.mean(r['summed']):.1f} "
            f"| {better} of {len(r['one'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--olmix", type=Path, help="folder with Olmix's swarm CSVs")
    p.add_argument("--surrogate", default="gp_hybrid")
    p.add_argument("--subsets", type=int, default=4)
    p.add_argument("--out", type=Path, default=RESULTS / "family_cv.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        started = time.perf_counter()
        rows = []
        for pool in OLMIX_POOLS:
            rows += run_pool(pool, args.olmix, args.surrogate, args.subsets)
        meta = run_meta(
            "family_cv.py",
            argv,
            wall_seconds=time.perf_counter() - started,
            surrogate=args.surrogate,
            subsets=args.subsets,
        )
        save_results(args.out, meta, rows)
    families = ", ".join(f"{k} {v}" for k, v in rows[0]["families"].items())
    md = (
        header_md("Per-task-family surrogates on Olmix's swarms", meta)
        + f"Surrogate `{meta['surrogate']}`; target: the mean of the 110 metrics; families "
        f"(metrics each): {families}. Spearman x100 on the runs not trained on, mean over "
        f"{meta['subsets']} random subsets.\n\n" + table_md(rows) + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
