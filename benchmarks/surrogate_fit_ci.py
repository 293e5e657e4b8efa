"""How precise is a fit figure at N=512? Bootstrap intervals of the test-set Spearman.

The N=512 row of benchmarks/surrogate_fit.py is one fit (all 512 1M runs), scored on 256 unseen
1M runs and 64 unseen 1B runs. This refits each surrogate on the 512 runs and resamples the test
runs (2000 bootstrap draws, fixed seed) for a 95 % percentile interval of the Spearman: the
test sets' own sampling noise, which a difference between two figures has to exceed to mean
anything. It chooses nothing.

    .venv/bin/python benchmarks/surrogate_fit_ci.py [--surrogates ensemble,gp,mixing_law]

Writes benchmarks/results/surrogate_fit_ci.json and .md.
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

from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    TARGET,
    load,
    run_meta,
    save_results,
    write_md,
)
from mixtures.surrogates import make_surrogate  # noqa: E402


def bootstrap(y: np.ndarray, p: np.ndarray, *, draws: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(draws):
        i = rng.integers(0, len(y), len(y))
        stats.append(spearmanr(y[i], p[i])[0])
    lo, hi = np.nanpercentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def run(surrogates: list[str], draws: int, seed: int) -> list[dict[str, Any]]:
    train = load("train_mixture_1m.csv", "train_pile_loss_1m.csv")
    d = train.domains
    tests = {
        "1M": load("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
        "1B": load("test_mixture_1B.csv", "test_pile_loss_1B.csv"),
    }
    rows = []
    for name in surrogates:
        started = time.perf_counter()
        model = make_surrogate(name, random_state=0).fit(train.weights(), train.target(TARGET))
        for label, table in tests.items():
            y, p = table.target(TARGET), model.predict(table.weights(d))
            lo, hi = bootstrap(y, p, draws=draws, seed=seed)
            rows.append(
                {
                    "surrogate": name,
                    "test": label,
                    "runs": len(y),
                    "spearman": float(spearmanr(y, p)[0]),
                    "ci95": [lo, hi],
                    "seconds": time.perf_counter() - started,
                }
            )
            print(
                f"{name} {label}: {100 * rows[-1]['spearman']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--surrogates", default="ensemble,gp,mixing_law")
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "surrogate_fit_ci.json")
    args = p.parse_args(argv)
    rows = run(args.surrogates.split(","), args.draws, args.seed)
    meta = run_meta("surrogate_fit_ci.py", argv, draws=args.draws)
    save_results(args.out, meta, rows)
    lines = [
        "# Spearman at N=512 with bootstrap 95 % intervals over the test runs",
        "",
        f"Command: `{meta['command']}`  ",
        f"Date: {meta['date']}; {args.draws} bootstrap draws of the test runs; target {TARGET}",
        "",
        "| surrogate | test | runs | Spearman x100 | 95 % interval |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["ci95"]
        lines.append(
            f"| {r['surrogate']} | {r['test']} | {r['runs']} | {100 * r['spearman']:.1f} "
            f"| {100 * lo:.1f} - {100 * hi:.1f} |"
        )
    write_md(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
