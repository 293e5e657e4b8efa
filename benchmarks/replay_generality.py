"""Replay on targets that no mixopt choice has seen: does the saving over random generalize?

Every setting of the optimizers (RegMix's 32 + 32 split, BO's 4 random runs, q = 1, the
``gp_hybrid`` default) was chosen on RegMix's Pile-CC loss, four other RegMix columns (ArXiv,
Wikipedia, HackerNews, GitHub), synthetic laws, and the mean of all 110 metrics of two Olmix
swarms (benchmarks/replay.py, replay_synthetic.py, replay_public.py). This script replays the
shipped defaults, unchanged, on targets none of those looked at. The list was fixed before any of
them was run (2026-11-22, 10:44 UTC; a 1-repeat smoke run at 10:45 changed only the 127-run pool's
budget from 63 to 64) and is not to be pruned after seeing results:

- RegMix's pool of 768 1M runs (17 domains), the eight validation losses not used before:
  dm_mathematics, freelaw, gutenberg_pg_19, pubmed_abstracts, pubmed_central, stackexchange,
  ubuntu_irc, uspto_backgrounds;
- Olmix's ``dclm`` (127 runs, 24 domains) and ``full_recomputation`` (512 runs, 64 domains)
  swarms, three task families each: MMLU (mean of the 57 ``mmlu_*`` bits-per-byte metrics), code
  (mean of the 17 ``mt_mbpp_v2fix:*``, ``codex_humaneval`` and ``mbpp``) and math (mean of the 7
  ``minerva_math_*``);
- Olmix's third swarm, ``full_reuse_update_5_seed_0`` (64 runs, 22 domains), never replayed
  before: the mean of all 110 metrics and the three families. Its pool has 64 runs, so the budget
  is 32 (RegMix: 16 + 16) and the top 1% is its single best run.

Methods: regmix (half the budget random, then the rest in the default surrogate's predicted
order, one shot) and bo (the optimizer's defaults: ``gp_hybrid``, 4 random runs, then one run per
round). Random needs ``(n + 1) / (top + 1)`` runs on average to the top 1% (exact). Budget 64 on
the larger pools, 10 repeats. Results are saved after each case; a rerun skips the finished ones
(``--fresh`` starts over).

The Olmix files are not in this repository; benchmarks/replay_public.py says how to get them.

    .venv/bin/python benchmarks/replay_generality.py --olmix /tmp/olmix   # about 1 hour, 2 cores

Writes benchmarks/results/replay_generality.json and .md.

``--set scales``: a second list, fixed on 2026-11-22 at 18:30 UTC (commit aae4dbe) after the
first had been run and read, and likewise not to be pruned: RegMix's two other released pools,
never replayed here, all 13 validation losses each. ``regmix60m``: the 256 test mixtures of the
1M pool trained at 60M parameters (the 1M runs of the same mixtures are part of the 768-run
pool; Pile-CC, ArXiv, Wikipedia, HackerNews and GitHub at 1M informed choices). ``regmix1b``: 64
other mixtures at 1B parameters (budget 32, top 1% = the best run). Same methods, repeats and
seeds. Writes benchmarks/results/replay_scales.json and .md:

    .venv/bin/python benchmarks/replay_generality.py --set scales
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_public import load as load_olmix  # noqa: E402
from benchmarks.replay_public import replay_figures  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load,
    load_results,
    run_cases_resumable,
    run_meta,
    write_md,
)
from mixtures.evaluation import random_runs_to_top, random_start_floor  # noqa: E402
from mixtures.runtable import RunTable  # noqa: E402

REGMIX_COLUMNS = (
    "dm_mathematics",
    "freelaw",
    "gutenberg_pg_19",
    "pubmed_abstracts",
    "pubmed_central",
    "stackexchange",
    "ubuntu_irc",
    "uspto_backgrounds",
)
#: task family -> does a metric name belong to it
FAMILIES: dict[str, Callable[[str], bool]] = {
    "mmlu": lambda m: m.startswith("mmlu_"),
    "code": lambda m: m.startswith(("mt_mbpp_v2fix:", "codex_humaneval", "mbpp:")),
    "math": lambda m: m.startswith("minerva_math_"),
}
OLMIX_POOLS = ("dclm", "full_recomputation", "full_reuse_update_5_seed_0")
#: every validation loss of RegMix's released runs (the ``--set scales`` targets)
REGMIX_ALL = (
    "arxiv",
    "freelaw",
    "pubmed_central",
    "wikipedia_en",
    "dm_mathematics",
    "github",
    "stackexchange",
    "gutenberg_pg_19",
    "pile_cc",
    "ubuntu_irc",
    "hackernews",
    "pubmed_abstracts",
    "uspto_backgrounds",
)
#: RegMix's pools: name -> (mixture CSV, loss CSV) pairs in data/regmix, concatenated
REGMIX_POOLS = {
    "regmix768": (
        ("train_mixture_1m.csv", "train_pile_loss_1m.csv"),
        ("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
    ),
    "regmix60m": (("test_mixture_60m.csv", "test_pile_loss_60m.csv"),),
    "regmix1b": (("test_mixture_1B.csv", "test_pile_loss_1B.csv"),),
}
METHODS = ("regmix", "bo")
#: The GP the committed reports' BO ran with (BO's default until session 10; pinned so that
#: rerunning a report's command reproduces it; benchmarks/bo_linear.py compares the new default)
REPORTED_BO_GP = "gp_hybrid"


def replay_budget(n: int) -> int:
    """Runs a replay may make on a pool of ``n``: 64, or half the pool on pools of 64 or fewer."""
    return 64 if n > 64 else n // 2


def cases(which: str = "targets18") -> list[tuple[str, str]]:
    """(pool, target label) in the fixed order of the docstring."""
    if which == "scales":
        return [(pool, c) for pool in ("regmix60m", "regmix1b") for c in REGMIX_ALL]
    out = [("regmix768", c) for c in REGMIX_COLUMNS]
    for pool in OLMIX_POOLS:
        if pool == "full_reuse_update_5_seed_0":
            out.append((pool, "all"))
        out += [(pool, f) for f in FAMILIES]
    return out


def target(table: RunTable, pool: str, label: str) -> tuple[str, int]:
    """The target expression and how many metrics it averages."""
    if pool in REGMIX_POOLS:
        return f"metric/the_pile_{label}_val_loss", 1
    names = [m for m in table.metrics if label == "all" or FAMILIES[label](m)]
    return "mean(" + ", ".join(names) + ")", len(names)


def load_pool(pool: str, olmix: Path | None) -> RunTable:
    if pool in REGMIX_POOLS:
        first, *rest = (load(*files) for files in REGMIX_POOLS[pool])
        for other in rest:
            first = first.concat(other)
        return first
    if olmix is None or not olmix.is_dir():
        raise SystemExit(
            f"--olmix must be a folder with Olmix's swarm CSVs for pool {pool}, got {olmix}; "
            "benchmarks/replay_public.py says how to get them"
        )
    return load_olmix(olmix, pool)


def run_case(
    table: RunTable, pool: str, label: str, repeats: int, seed: int, workers: int
) -> dict[str, Any]:
    expr, n_metrics = target(table, pool, label)
    return replay_case(table, pool, label, expr, n_metrics, repeats, seed, workers)


def replay_case(
    table: RunTable,
    pool: str,
    label: str,
    expr: str,
    n_metrics: int,
    repeats: int,
    seed: int,
    workers: int,
) -> dict[str, Any]:
    """One report row: random's exact expectation, then each of METHODS replayed on ``expr``
    (budget 64, or half the pool on pools of 64 runs or fewer)."""
    X, y = table.weights(), table.target(expr)
    budget = replay_budget(len(y))
    top = math.ceil(0.01 * len(y))
    mean, median = random_runs_to_top(len(y), top)
    row: dict[str, Any] = {
        "pool": pool,
        "target": label,
        "metrics": n_metrics,
        "runs": len(y),
        "domains": len(table.domains),
        "budget": budget,
        "top": top,
        "random_mean": mean,
        "random_median": median,
    }
    params = {
        "regmix": ("regmix", None, {"n_init": budget // 2}),
        "bo": ("bo", 1, {"surrogate": REPORTED_BO_GP}),
    }
    for name in METHODS:
        optimizer, batch, extra = params[name]
        row[name] = replay_figures(
            f"{pool} {label} {name}",
            X,
            y,
            domains=table.domains,
            optimizer=optimizer,
            budget=budget,
            repeats=repeats,
            seed=seed,
            batch=batch,
            optimizer_params=extra,
            workers=workers,
        )
    return row


#: BO's random start when this report was run (e7ac44f): ``BOOptimizer``'s default ``n_init``
BO_RANDOM_START = 4


def random_start(row: dict[str, Any], method: str) -> int:
    """How many uniform random runs the method makes before its model chooses."""
    return row["budget"] // 2 if method == "regmix" else BO_RANDOM_START


def ceiling(row: dict[str, Any], method: str) -> float:
    """The largest saving the method's random start allows (an oracle right after it)."""
    floor = random_start_floor(row["runs"], row["top"], random_start(row, method))
    return row["random_mean"] / floor


def saving(row: dict[str, Any], method: str) -> float | None:
    """Random's expected runs over the method's median; None when the median repeat missed the
    top 1% within the budget (``replay`` counts a miss as budget + 1 runs)."""
    med = row[method]["median"]
    return None if med > row["budget"] else row["random_mean"] / med


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pool | target (metrics) | runs / domains | budget | top 1% | random: expected "
        "| regmix: median (saving, hits; ceiling) | bo: median (saving, hits; ceiling) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["pool"],
            f"{r['target']} ({r['metrics']})",
            f"{r['runs']} / {r['domains']}",
            str(r["budget"]),
            str(r["top"]),
            f"{r['random_mean']:.1f}",
        ]
        for m in METHODS:
            med, sav = r[m]["median"], saving(r, m)
            hits = f"{round(r[m]['hit_rate'] * len(r[m]['per_repeat']))}/{len(r[m]['per_repeat'])}"
            cap = f"{ceiling(r, m):.1f}x"
            cells.append(
                f"not reached ({hits}; {cap})"
                if sav is None
                else f"{med:g} ({sav:.1f}x, {hits}; {cap})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_md(rows: list[dict[str, Any]]) -> str:
    out = []
    for m in METHODS:
        savs = [saving(r, m) or 0.0 for r in rows]
        ten = sum(s >= 10 for s in savs)
        five = sum(s >= 5 for s in savs)
        open_ = [s for r, s in zip(rows, savs, strict=True) if ceiling(r, m) >= 10]
        out.append(
            f"- {m}: median saving {statistics.median(savs):.1f}x over {len(rows)} targets "
            f"(not reached counts as 0); >= 10x on {ten}, >= 5x on {five}. Its random start "
            f"leaves 10x reachable on {len(open_)} targets; on those its median saving is "
            + (f"{statistics.median(open_):.1f}x." if open_ else "undefined.")
        )
    bo_better = sum((saving(r, "bo") or 0.0) > (saving(r, "regmix") or 0.0) for r in rows)
    same = sum((saving(r, "bo") or 0.0) == (saving(r, "regmix") or 0.0) for r in rows)
    out.append(f"- bo needs fewer runs than regmix on {bo_better}, as many on {same}.")
    return "\n".join(out)


TITLES = {
    "targets18": "Replay on targets no choice has seen",
    "scales": "Replay on RegMix's 60M and 1B pools (second fresh set)",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--olmix", type=Path, help="folder with Olmix's swarm CSVs")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument(
        "--set", dest="which", choices=tuple(TITLES), default="targets18", help="which case list"
    )
    p.add_argument("--out", type=Path, help="default: results/replay_generality.json (targets18)")
    p.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.out is None:
        stem = "replay_generality" if args.which == "targets18" else f"replay_{args.which}"
        args.out = RESULTS / f"{stem}.json"
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        tables: dict[str, RunTable] = {}

        def run(pool: str, label: str) -> dict[str, Any]:
            if pool not in tables:
                tables[pool] = load_pool(pool, args.olmix)
            return run_case(tables[pool], pool, label, args.repeats, args.seed, args.workers)

        meta, rows = run_cases_resumable(
            args.out,
            cases(args.which),
            run,
            fresh=args.fresh,
            meta=lambda spent: run_meta(
                "replay_generality.py", argv, wall_seconds=spent, repeats=args.repeats
            ),
            settings={"repeats": args.repeats, "seed": args.seed, "set": args.which},
        )
    md = (
        header_md(TITLES[args.which], meta)
        + f"{meta['repeats']} repeats per method; saving = random's expected runs to the top "
        "1% / the method's median; hits = repeats that reached the top 1% within the budget. "
        + (
            "Olmix data: allenai/olmix (Apache-2.0) at 6df202e^, not in this repository. "
            if args.which == "targets18"
            else ""
        )
        + "Ceiling = random's expected runs / the median runs to the top 1% of an oracle that "
        "makes the method's uniform random start (regmix: half the budget; bo: "
        f"{BO_RANDOM_START} runs) and then runs a top mixture: a ceiling below 10x puts one "
        "tenth of random out of the design's reach. A median of 10 repeats can beat its "
        "ceiling by luck of the random starts (the same seeds give the same starts on every "
        "target of a pool).\n\n" + table_md(rows) + "\n\n" + summary_md(rows) + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
