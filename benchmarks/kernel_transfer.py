"""BO with a transferred kernel (``--kernel-from``) on 38 targets that did not choose it.

benchmarks/bo_oracle.py found that BO's ``gp_hybrid`` with its kernel fitted on the 64-domain
Olmix swarm's *other* evaluations (the 27 metrics outside the MMLU, code and math families)
needed 20 / 6.5 / 9 runs to the top 1% against 20 / 13.5 / 15 with the kernel learned from the
search's own runs. Those three targets chose the idea, so they cannot test it. This script
replays BO (q = 1, 4 random runs, the seeds, budget and repeats of bo_linear.py, so every
repeat's random start is the same) with ``mixtures.surrogates.transfer.TransferredKernel`` fitted
on each pool's other evaluations, on targets the idea has not seen:

- ``regmix8``: the eight RegMix columns of replay_generality's targets18 (768 runs, 17
  domains); the kernel from the mean of the pool's 12 other validation losses.
- ``reuse``: Olmix's 22-domain, 64-run swarm (``full_reuse_update_5_seed_0``), the MMLU, code
  and math families; the kernel from the 27 general metrics.
- ``own``, ``fresh``, ``fresh2``: the three 258-run demo-corpus swarms of data/ (9 domains, 9
  validation losses each); the kernel from the mean of the 8 other validation losses.

Variants: ``transfer_hybrid`` (``gp_hybrid`` with the transferred kernel), ``transfer_linear``
(``gp_hybrid_linear`` with it) and ``shuffled_hybrid``, a control: ``gp_hybrid``'s kernel fitted
on the other evaluations randomly permuted across runs, which keeps their scale and noise level
but not which domains matter. The learned GPs' runs are read from bo_linear.json (own, fresh,
targets18) and bo_average.json (fresh2), same seeds.

The rule, written down before any result: kernel transfer is recommended (with ``gp_hybrid``) in
the README and docs/decisions.md only if, over the 38 targets, (1) ``transfer_hybrid``'s median
saving over random is at least that of BO's default (``gp_hybrid_linear``, learned), (2) its
median runs are lower than learned ``gp_hybrid``'s on more targets than they are higher, and (3)
lower than ``shuffled_hybrid``'s on more targets than they are higher. Otherwise it stays an
option, documented with these figures and not recommended.

    .venv/bin/python benchmarks/kernel_transfer.py --olmix /tmp/olmix    # about 30 minutes

Writes benchmarks/results/kernel_transfer.json and .md.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bo_average import saving  # noqa: E402
from benchmarks.bo_linear import case_row, pool_tables  # noqa: E402
from benchmarks.replay_generality import (  # noqa: E402
    FAMILIES,
    REGMIX_COLUMNS,
    replay_budget,
    target,
)
from benchmarks.replay_public import replay_figures  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    case_args,
    header_md,
    load_results,
    rows_by_case,
    run_cases_resumable,
    run_meta,
    write_md,
)
from mixtures.runtable import RunTable  # noqa: E402
from mixtures.surrogates.transfer import TransferredKernel  # noqa: E402
from proxies.sources import DEFAULT_DOMAINS  # noqa: E402

DATA = ROOT / "data"
LOCAL = {
    "own": DATA / "mixopt_demo_swarm" / "runs.parquet",
    "fresh": DATA / "mixopt_heldout_swarm" / "runs.parquet",
    "fresh2": DATA / "mixopt_heldout_dialogue_swarm" / "runs.parquet",
}
REUSE = "full_reuse_update_5_seed_0"
VARIANTS = {  # name -> (GP preset, the other evaluations permuted)
    "transfer_hybrid": ("gp_hybrid", False),
    "transfer_linear": ("gp_hybrid_linear", False),
    "shuffled_hybrid": ("gp_hybrid", True),
}
LEARNED = ("gp_hybrid", "hybrid_linear")  # the saved columns, learned kernels
SETS = ("regmix8", "reuse", "own", "fresh", "fresh2")


def cases() -> list[tuple[str, str]]:
    out = [("regmix768", c) for c in REGMIX_COLUMNS]
    out += [(REUSE, f) for f in FAMILIES]
    return out + [(pool, d) for pool in LOCAL for d in DEFAULT_DOMAINS]


def set_of(pool: str) -> str:
    return {"regmix768": "regmix8", REUSE: "reuse"}.get(pool, pool)


@functools.cache
def learned() -> dict[tuple[str, str], dict[str, Any]]:
    rows = rows_by_case(RESULTS / "bo_linear.json")
    return {**rows, **rows_by_case(RESULTS / "bo_average.json")}


def expressions(table: RunTable, pool: str, label: str) -> tuple[str, int, str, int]:
    """The target's expression and metric count, then the other evaluations' ones."""
    if pool in LOCAL:
        expr, n = f"val_loss/{label}", 1
        others = [f"val_loss/{d}" for d in DEFAULT_DOMAINS if d != label]
    else:
        expr, n = target(table, pool, label)
        if pool == "regmix768":
            others = [m for m in table.metrics if m != f"metric/the_pile_{label}_val_loss"]
        else:
            others = [m for m in table.metrics if not any(f(m) for f in FAMILIES.values())]
    return expr, n, "mean(" + ", ".join(others) + ")", len(others)


def run_case(table: RunTable, pool: str, label: str, a: argparse.Namespace) -> dict[str, Any]:
    expr, n_metrics, other, n_other = expressions(table, pool, label)
    X, y, y_other = table.weights(), table.target(expr), table.target(other)
    row = case_row(set_of(pool), pool, label, n_metrics, y, len(table.domains))
    row["other_metrics"] = n_other
    for column in LEARNED:
        row[column] = dict(learned()[(pool, label)][column], source="saved")
    for variant, (preset, shuffled) in VARIANTS.items():
        values = np.random.default_rng(a.seed).permutation(y_other) if shuffled else y_other
        kernel = TransferredKernel(preset, random_state=a.seed).fit(X, values, table.domains)
        row[variant] = replay_figures(
            f"{pool} {label} {variant}",
            X,
            y,
            domains=table.domains,
            optimizer="bo",
            budget=replay_budget(len(y)),
            repeats=a.repeats,
            seed=a.seed,
            batch=1,
            optimizer_params={"surrogate": preset, "kernel_from": kernel},
            workers=a.workers,
        )
    return row


def runs(row: dict[str, Any], column: str) -> float:
    """The column's median runs to the top, a miss counted as budget + 1."""
    med = row[column]["median"]
    return row["budget"] + 1 if med is None else med


def compare(rows: list[dict[str, Any]], a: str, b: str) -> tuple[int, int]:
    """Targets where ``a`` needs fewer runs than ``b`` (median), and more."""
    return (
        sum(runs(r, a) < runs(r, b) for r in rows),
        sum(runs(r, a) > runs(r, b) for r in rows),
    )


COLUMNS = ("gp_hybrid", "hybrid_linear", "transfer_hybrid", "transfer_linear", "shuffled_hybrid")


def summary_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| set | targets | "
        + " | ".join(f"{c}: median saving (10x)" for c in COLUMNS)
        + " | transfer_hybrid vs gp_hybrid: fewer / more | vs shuffled: fewer / more |",
        "|---" * (4 + len(COLUMNS)) + "|",
    ]
    for name in (*SETS, "all"):
        rs = rows if name == "all" else [r for r in rows if r["set"] == name]
        if not rs:
            continue
        cells = [name, str(len(rs))]
        for c in COLUMNS:
            s = [saving(r, c) for r in rs]
            cells.append(f"{np.median(s):.1f}x ({sum(x >= 10 for x in s)})")
        for other in ("gp_hybrid", "shuffled_hybrid"):
            fewer, more = compare(rs, "transfer_hybrid", other)
            cells.append(f"{fewer} / {more}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rule_md(rows: list[dict[str, Any]]) -> str:
    default = float(np.median([saving(r, "hybrid_linear") for r in rows]))
    transfer = float(np.median([saving(r, "transfer_hybrid") for r in rows]))
    fewer, more = compare(rows, "transfer_hybrid", "gp_hybrid")
    sfewer, smore = compare(rows, "transfer_hybrid", "shuffled_hybrid")
    clauses = [
        (f"median saving {transfer:.1f}x >= the default's {default:.1f}x", transfer >= default),
        (f"fewer runs than learned gp_hybrid on {fewer}, more on {more}", fewer > more),
        (f"fewer runs than the shuffled control on {sfewer}, more on {smore}", sfewer > smore),
    ]
    held = all(ok for _, ok in clauses)
    lines = [
        f"- ({i}) {text}: {'holds' if ok else 'fails'}" for i, (text, ok) in enumerate(clauses, 1)
    ]
    verdict = "recommended with gp_hybrid" if held else "an option, not recommended"
    return "\n".join(
        [*lines, f"- Rule {'held' if held else 'failed'}: kernel transfer is {verdict}."]
    )


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| set | pool | target | runs / domains | random: expected | "
        + " | ".join(f"{c}: median" for c in COLUMNS)
        + " |",
        "|---" * (5 + len(COLUMNS)) + "|",
    ]
    for r in rows:
        cells = [r["set"], r["pool"], r["target"], f"{r['runs']} / {r['domains']}"]
        cells.append(f"{r['random_mean']:.1f}")
        for c in COLUMNS:
            med = r[c]["median"]
            cells.append("not reached" if med is None or med > r["budget"] else f"{med:g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = case_args(__doc__, "kernel_transfer", argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        table = pool_tables(LOCAL, args.olmix)
        meta, rows = run_cases_resumable(
            args.out,
            cases(),
            lambda pool, label: run_case(table(pool), pool, label, args),
            fresh=args.fresh,
            meta=lambda spent: run_meta(
                "kernel_transfer.py", argv, wall_seconds=spent, repeats=args.repeats
            ),
            settings={"repeats": args.repeats, "seed": args.seed},
        )
    md = (
        header_md("BO with a transferred kernel, on 38 targets that did not choose it", meta)
        + f"{meta['repeats']} repeats, q = 1, 4 random runs to start (the same draws as the saved "
        "learned-GP runs); saving = random's expected runs to the top 1% / the median; (10x) = "
        "targets at one tenth of random or better. Olmix data: allenai/olmix (Apache-2.0) at "
        "6df202e^, not in this repository.\n\n"
        + summary_md(rows)
        + "\n\n"
        + rule_md(rows)
        + "\n\n"
        + table_md(rows)
        + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
