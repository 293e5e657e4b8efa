"""Two ways to make a proxy's loss less noisy, at the same cost: two seeds, or twice the tokens?

benchmarks/seed_noise.py found the demo's held-out target half seed noise at the demo's proxy
scale (test-retest Spearman 0.50 over 64 mixtures). This script compares, over the first ``--n``
mixtures of data/mixopt_demo_swarm, the test-retest Spearman per domain of

- one proxy per mixture, the demo's 250k tokens (seed 0, the committed losses, against seed 1);
- the mean of two proxies per mixture (seeds 0 and 1 against seeds 2 and 3): twice the cost;
- one proxy with twice the tokens, 500k (seed 0 against seed 1): also twice the cost.

    .venv/bin/python benchmarks/seed_noise_remedies.py    # 4 x 48 proxies, about 20 minutes

Writes benchmarks/results/seed_noise_remedies.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

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
from proxies.runs import RunStore  # noqa: E402

COLUMNS = ("one proxy, 250k", "mean of 2 proxies, 250k each", "one proxy, 500k")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=48, help="mixtures")
    p.add_argument("--store", type=Path, default=Path("/tmp/mixopt_seed_noise"))
    p.add_argument("--out", type=Path, default=RESULTS / "seed_noise_remedies.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        cfg = load_config(ROOT / "configs" / "demo.yaml")
        corpus = demo_corpus(cfg)
        table = RunTable.read(POOL)
        store = RunStore(args.store)
        rows_ = range(args.n)
        double = twice_the_tokens(cfg)
        started = time.perf_counter()
        short = {s: losses(table, rows_, s, corpus, store, cfg) for s in (1, 2, 3)}
        long = {s: losses(table, rows_, s, corpus, store, double) for s in (0, 1)}
        rows = {}
        for d in short[1]:
            s0 = table.target(f"val_loss/{d}")[: args.n]  # seed 0: the committed losses
            s1, s2, s3 = (np.asarray(short[s][d]) for s in (1, 2, 3))
            rows[d] = {
                COLUMNS[0]: float(spearmanr(s0, s1)[0]),
                COLUMNS[1]: float(spearmanr((s0 + s1) / 2, (s2 + s3) / 2)[0]),
                COLUMNS[2]: float(spearmanr(long[0][d], long[1][d])[0]),
            }
        meta = run_meta(
            "seed_noise_remedies.py", argv, wall_seconds=time.perf_counter() - started, n=args.n
        )
        save_results(args.out, meta, rows)
    lines = ["| domain | " + " | ".join(COLUMNS) + " |", "|---" * (1 + len(COLUMNS)) + "|"]
    for d, r in sorted(rows.items(), key=lambda kv: kv[1][COLUMNS[0]]):
        lines.append(f"| {d} | " + " | ".join(f"{100 * r[k]:.1f}" for k in COLUMNS) + " |")
    md = (
        "# Less noisy proxies: two seeds or twice the tokens?\n\n"
        f"Command: `{meta['command']}`  \nDate: {meta['date']}; machine: {meta['machine']}; "
        f"{meta['wall_seconds']:.0f} s in all\n\n"
        f"Test-retest Spearman x100 over the first {meta['n']} mixtures of "
        "data/mixopt_demo_swarm, the demo's proxy (micro); the last two columns cost twice the "
        "first. Lowest single-proxy reliability first:\n\n" + "\n".join(lines) + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
