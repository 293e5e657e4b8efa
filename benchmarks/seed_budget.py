"""A fixed proxy budget: more mixtures, or fewer with two seeds each (or twice the tokens)?

benchmarks/seed_noise_remedies.py found that the mean of two seeds makes the held-out target's
loss of one mixture far more repeatable (test-retest Spearman 0.46 -> 0.82), where twice the
tokens does not. That is a property of single runs. What a sweep needs is a surrogate that ranks
unseen mixtures well, and a regression already averages noise over the mixtures it sees. So at
the same number of proxy runs, this script compares the surrogate fitted to

- **breadth**: N mixtures, one proxy each (250k tokens, seed 0: what mixopt does today);
- **two seeds**: N/2 mixtures, the mean of two proxies each (seeds 0 and 1);
- **twice the tokens**: N/2 mixtures, one 500k-token proxy each (seed 0);

on test mixtures whose label none of the arms trained on: the mean of seeds 2 and 3 (250k).
The runs are the ones benchmarks/seed_noise.py and seed_noise_remedies.py trained (their run
store; missing runs are trained, about 25 minutes for all). The test mixtures are a random half
of the first 48 of data/mixopt_demo_swarm (those with four seeds); breadth draws from the other
234 swarm mixtures, two seeds from the other mixtures of the first 64, twice the tokens from the
other mixtures of the first 48. Per split, surrogate and train size it records the Spearman x100
of the predictions with the test labels, and the test label's rank (1 = best of 24) of the
mixture the surrogate predicts best.

    .venv/bin/python benchmarks/seed_budget.py      # about 30 minutes with the run store in place

Writes benchmarks/results/seed_budget.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.seed_noise import POOL, demo_corpus, losses, twice_the_tokens  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    load_results,
    run_meta,
    save_results,
    write_md,
)
from configs.schema import load_config  # noqa: E402
from mixtures.runtable import RunTable  # noqa: E402
from mixtures.surrogates import make_surrogate  # noqa: E402
from proxies.runs import RunStore  # noqa: E402

ARMS = ("breadth", "two seeds", "twice the tokens")
SIZES = (16, 32, 48)  # proxy runs; two seeds and twice the tokens fit N/2 mixtures
SURROGATES = ("ridge", "ensemble", "gp_hybrid")
FOUR_SEEDS = 48  # mixtures with seeds 0-3 at 250k and seeds 0-1 at 500k
TWO_SEEDS = 64  # mixtures with seeds 0-1 at 250k
N_TEST = 24


def collect(store: Path) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """The swarm's weights and, per label, per domain, the losses of the runs it has."""
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    corpus = demo_corpus(cfg)
    table = RunTable.read(POOL)
    runs = RunStore(store)
    twice = twice_the_tokens(cfg)
    got = {
        "s1": losses(table, range(TWO_SEEDS), 1, corpus, runs, cfg),
        "s2": losses(table, range(FOUR_SEEDS), 2, corpus, runs, cfg),
        "s3": losses(table, range(FOUR_SEEDS), 3, corpus, runs, cfg),
        "long0": losses(table, range(FOUR_SEEDS), 0, corpus, runs, twice),
    }
    out: dict[str, dict[str, np.ndarray]] = {}
    for d in got["s1"]:
        out[d] = {k: np.asarray(v[d]) for k, v in got.items()}
        out[d]["s0"] = table.target(f"val_loss/{d}")  # seed 0: the committed losses, all 258
    return table.weights(), out


def evaluate(X: np.ndarray, y: dict[str, np.ndarray], splits: int) -> dict[str, Any]:
    """Per arm, size and surrogate: the Spearman x100 and the pick's test rank, per split."""

    def empty() -> dict[str, Any]:
        return {a: {str(n): {s: [] for s in SURROGATES} for n in SIZES} for a in ARMS}

    res, ranks = empty(), empty()
    for split in range(splits):
        rng = np.random.default_rng(split)
        test = rng.permutation(FOUR_SEEDS)[:N_TEST]
        label = (y["s2"][test] + y["s3"][test]) / 2
        label_rank = rankdata(label)  # 1 = the best test mixture
        rest = np.setdiff1d(np.arange(len(X)), test)
        pools = {
            "breadth": (rng.permutation(rest), y["s0"]),
            "two seeds": (
                rng.permutation(rest[rest < TWO_SEEDS]),
                np.concatenate([(y["s0"][:TWO_SEEDS] + y["s1"]) / 2, y["s0"][TWO_SEEDS:]]),
            ),
            "twice the tokens": (
                rng.permutation(rest[rest < FOUR_SEEDS]),
                np.concatenate([y["long0"], y["s0"][FOUR_SEEDS:]]),
            ),
        }
        for arm, (order, values) in pools.items():
            for n in SIZES:
                k = n if arm == "breadth" else n // 2
                if k > len(order):
                    raise SystemExit(f"{arm}: {k} mixtures wanted, {len(order)} in its pool")
                train = order[:k]
                for name in SURROGATES:
                    model = make_surrogate(name, random_state=split)
                    pred = model.fit(X[train], values[train]).predict(X[test])
                    rho = spearmanr(pred, label)[0]
                    res[arm][str(n)][name].append(100 * float(rho))
                    ranks[arm][str(n)][name].append(int(label_rank[int(np.argmin(pred))]))
    return {"spearman": res, "pick_rank": ranks}


def table_md(rows: dict[str, Any], key: str, fmt: str, domains: list[str]) -> str:
    head = "| target | train runs | " + " | ".join(f"{a}: {s}" for a in ARMS for s in SURROGATES)
    lines = [head + " |", "|---" * (2 + len(ARMS) * len(SURROGATES)) + "|"]
    for d in domains:
        for n in SIZES:
            cells = [
                format(float(np.mean(rows[d][key][a][str(n)][s])), fmt)
                for a in ARMS
                for s in SURROGATES
            ]
            lines.append(f"| {d} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_md(rows: dict[str, Any]) -> str:
    """Mean Spearman over surrogates and splits: held-out target vs the trained domains' mean."""
    trained = [d for d in rows if d != "tech_docs"]
    lines = ["| train runs | target | " + " | ".join(ARMS) + " |", "|---|---|---|---|---|"]
    for n in SIZES:
        for label, ds in (("tech_docs (held out)", ["tech_docs"]), ("8 trained domains", trained)):
            cells = []
            for a in ARMS:
                v = [x for d in ds for s in SURROGATES for x in rows[d]["spearman"][a][str(n)][s]]
                cells.append(f"{np.mean(v):.1f}")
            lines.append(f"| {n} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, default=Path("/tmp/mixopt_seed_noise"))
    p.add_argument("--splits", type=int, default=12, help="random test/train splits")
    p.add_argument("--out", type=Path, default=RESULTS / "seed_budget.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        started = time.perf_counter()
        X, y = collect(args.store)
        rows = {d: evaluate(X, y[d], args.splits) for d in y}
        meta = run_meta(
            "seed_budget.py", argv, wall_seconds=time.perf_counter() - started, splits=args.splits
        )
        save_results(args.out, meta, rows)
    domains = sorted(rows, key=lambda d: d != "tech_docs")
    md = (
        "# A fixed proxy budget: more mixtures, or two seeds per mixture?\n\n"
        f"Command: `{meta['command']}`  \nDate: {meta['date']}; machine: {meta['machine']}; "
        f"{meta['wall_seconds']:.0f} s in all\n\n"
        f"{meta['splits']} random splits; test: {N_TEST} of the first {FOUR_SEEDS} swarm mixtures, "
        "labelled by the mean of seeds 2 and 3. Each arm spends the same number of proxy runs: "
        "breadth N mixtures x 1 seed, two seeds N/2 x 2, twice the tokens N/2 x 1 of 500k.\n\n"
        "## Mean Spearman x100 over surrogates and splits\n\n"
        + summary_md(rows)
        + "\n\n## Spearman x100 per surrogate (mean over splits)\n\n"
        + table_md(rows, "spearman", ".1f", domains)
        + f"\n\n## Test rank of the mixture each surrogate predicts best (1 = best of {N_TEST}; "
        "mean over splits)\n\n" + table_md(rows, "pick_rank", ".1f", domains) + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
