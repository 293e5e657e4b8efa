"""Optimizer replay on RegMix's pool of 768 1M-parameter runs (issue 3, item 6).

Each optimizer runs in pool mode: it may only propose mixtures of the pool, and a proposal's
result is looked up, not trained. Reported per method (20 repeats, own seeds): runs until a
mixture of the pool's top 1% (8 of 768 runs, Pile-CC validation loss) has been run, and the
simple regret after 16/32/64 runs.

- random: uniform pool members, budget = the whole pool, so its median is not cut off;
- regmix: RegMix one shot: 32 random runs, fit the surrogate (default ensemble), then the
  remaining 32 runs in predicted order;
- bo: 4 random runs, then rounds of q = 4 chosen by qLogNoisyExpectedImprovement on the
  RBF GP (``gp``);
- bo_q2: the same with q = 2 and a budget of 24 (regret after 16 runs only);
- bo_q1 / bo_linear_q1: q = 1, budget 32, with the RBF GP or the linear + RBF GP (the
  optimizer's default since 2026-11-22 04:10);
- bo_hybrid_q1: q = 1, budget 32, with ``gp_hybrid`` (linear in the weights and in their
  square roots, plus an RBF on the square roots).

    .venv/bin/python benchmarks/replay.py [--only bo] [--repeats 20]

Writes benchmarks/results/replay.json and .md (merged with earlier runs by method) and
benchmarks/results/replay_<method>.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.surrogate_fit import RESULTS, TARGET, load, machine  # noqa: E402
from mixtures.evaluation import plot_regret, replay  # noqa: E402

#: method -> (optimizer, budget or None for 64, batch (None: one shot), optimizer params)
METHODS: dict[str, tuple[str, int | None, int | None, dict[str, Any]]] = {
    "random": ("random", None, 64, {}),
    "regmix": ("regmix", 64, None, {"n_init": 32}),
    "bo": ("bo", 64, 4, {"n_init": 4, "surrogate": "gp"}),
    # smaller batches: more rounds (GP refits) for the same runs; budget 24 keeps it affordable
    "bo_q2": ("bo", 24, 2, {"n_init": 4, "surrogate": "gp"}),
    # one run per round; the RBF GP on sqrt(weights) vs the linear + RBF GP on the weights
    "bo_q1": ("bo", 32, 1, {"n_init": 4, "surrogate": "gp"}),
    "bo_linear_q1": ("bo", 32, 1, {"n_init": 4, "surrogate": "gp_linear"}),
    # linear in w and sqrt(w) + RBF on sqrt(w): the evidence picks the feature map
    "bo_hybrid_q1": ("bo", 32, 1, {"n_init": 4, "surrogate": "gp_hybrid"}),
}


def key(method: str, target: str) -> str:
    """Results key: the method, with the target's short name when it is not the default."""
    if target == TARGET:
        return method
    return f"{method} @ {target.removeprefix('metric/the_pile_').removesuffix('_val_loss')}"


def run(
    methods: list[str], repeats: int, seed: int, target: str = TARGET, workers: int = 1
) -> dict[str, Any]:
    train = load("train_mixture_1m.csv", "train_pile_loss_1m.csv")
    test = load("test_mixture_1m.csv", "test_pile_loss_1m.csv")
    pool = train.concat(test)
    X, y = pool.weights(), pool.target(target)
    out = {}
    for name in methods:
        optimizer, budget, batch, params = METHODS[name]
        started = time.perf_counter()
        res = replay(
            X,
            y,
            domains=pool.domains,
            optimizer=optimizer,
            budget=budget or len(y),
            repeats=repeats,
            seed=seed,
            batch=batch,
            optimizer_params=params,
            workers=workers,
        )
        res["wall_seconds"] = time.perf_counter() - started
        res["target"] = target
        k = key(name, target)
        plot_regret(res, RESULTS / f"replay_{k.replace(' @ ', '@')}.png")
        out[k] = res
        s = res["summary"]
        hits = [r["runs_to_top"] for r in res["per_repeat"]]
        print(f"{k}: median runs to top 1% {s['runs_to_top_median']:g}; per repeat {hits}")
        print(f"  regret medians {s['regret_median']}; {res['wall_seconds']:.0f} s", flush=True)
    return out


def table_md(results: dict[str, Any]) -> str:
    lines = [
        "| method | budget | median runs to top 1% | mean | hit rate | regret@16 | regret@32 "
        "| regret@64 | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        s = res["summary"]
        reg = {k: s["regret_median"].get(k, float("nan")) for k in ("16", "32", "64")}
        lines.append(
            f"| {name} | {res['budget']} | {s['runs_to_top_median']:g} | "
            f"{s['runs_to_top_mean']:.1f} | {s['hit_rate']:.0%} | {reg['16']:.4f} "
            f"| {reg['32']:.4f} | {reg['64']:.4f} "
            f"| {res['wall_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(METHODS), help="comma-separated methods")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument(
        "--target",
        default=TARGET,
        help="metric column to minimize (other columns check the method is not tuned to one)",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "replay.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    command = "python benchmarks/replay.py " + " ".join(argv or sys.argv[1:])
    methods = args.only.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; expected some of {list(METHODS)}")
    results = (
        {} if args.render_only else run(methods, args.repeats, args.seed, args.target, args.workers)
    )
    for res in results.values():  # the curves stay out of the file; the order is kept
        res["per_repeat"] = [
            {k: v for k, v in r.items() if k != "curve"} for r in res["per_repeat"]
        ]
        res["command"] = command
        res["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        res["load_1min_at_end"] = os.getloadavg()[0]
    merged = json.loads(args.out.read_text())["results"] if args.out.exists() else {}
    merged.update(results)

    def rank(k: str) -> tuple[str, int]:
        method, _, target = k.partition(" @ ")
        return (target, list(METHODS).index(method) if method in METHODS else len(METHODS))

    ordered = {k: merged[k] for k in sorted(merged, key=rank)}
    meta = {
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "target": TARGET,
        "pool": "768 RegMix 1M runs (512 train + 256 test)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**meta, "results": ordered}, indent=1) + "\n")
    m = meta["machine"]
    runs = {k: [r["runs_to_top"] for r in v["per_repeat"]] for k, v in ordered.items()}
    md = [
        "# Optimizer replay on RegMix's 768-run pool",
        "",
        *(
            f"- {k}: `{v.get('command', '?')}`, finished {v.get('date', '?')}, "
            f"1-min load then {v.get('load_1min_at_end', float('nan')):.1f}"
            for k, v in ordered.items()
        ),
        "",
        f"Machine: {m['nproc']} cores, {m['cpu']}, shared with other jobs (wall times vary).",
        "",
        f"Target {TARGET} unless the method names another (`method @ target`: the same pool, "
        "another metric column); top 1% = 8 runs. Misses count as budget + 1 in the median.",
        "",
        table_md(ordered),
        "",
        "Runs to top 1% per repeat: "
        + "; ".join(
            f"{k}: {' '.join('-' if h is None else str(h) for h in v)}" for k, v in runs.items()
        ),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
