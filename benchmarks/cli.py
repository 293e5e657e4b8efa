"""The suite's command line.

    python -m benchmarks list                                  # cases, what they measure, params
    python -m benchmarks run CASE [--set key=value ...] [--out DIR]
    python -m benchmarks render [--results DIR] [--doc FILE] [--check]
    python -m benchmarks smoke [--only CASE,...] [--out DIR]   # every case, tiny, in a temp folder

``run`` writes ``DIR/CASE.json`` (default benchmarks/results/); ``render`` rewrites the tables of
BENCHMARKS.md from those files (``--check``: exit 1 if it would change anything). Bad input
(an unknown case or parameter, a malformed value) exits with code 2 and says what is wrong.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.cases import all_cases
from benchmarks.render import render, render_block
from benchmarks.suite import RESULTS, ROOT, Case, parse_sets, read_result, run_case
from mixtures.errors import ConfigError

DOC = ROOT / "BENCHMARKS.md"


def get_case(name: str) -> Case:
    cases = all_cases()
    if name not in cases:
        raise ConfigError(f"unknown case {name!r}; cases: {', '.join(cases)}")
    return cases[name]


def cmd_list(args: argparse.Namespace) -> int:
    for case in all_cases().values():
        print(f"{case.name}: {case.summary}")
        for key, value in case.params().model_dump(mode="json").items():
            print(f"    {key} = {value}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    case = get_case(args.case)
    overrides = parse_sets(args.set)
    with tempfile.TemporaryDirectory(prefix=f"mixopt-bench-{case.name}-") as work:
        path = run_case(case, overrides, args.out, Path(work))
    print(render_block(case, read_result(path)))
    print(f"wrote {path}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    cases = all_cases()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / args.doc.name
            shutil.copyfile(args.doc, copy)
            render(copy, args.results, cases)
            if copy.read_text() != args.doc.read_text():
                print(f"{args.doc} is not up to date with {args.results}; run render")
                return 1
        return 0
    names = render(args.doc, args.results, cases)
    print(f"rendered {len(names)} tables into {args.doc}: {', '.join(names)}")
    return 0


def smoke(out: Path, names: list[str] | None = None, doc: Path = DOC) -> dict[str, float]:
    """Every case (or ``names``) with its smoke parameters into ``out``, then BENCHMARKS.md
    rendered from those results into ``out/BENCHMARKS.md``; returns each case's seconds."""
    cases = all_cases()
    chosen = [get_case(n) for n in names] if names else list(cases.values())
    seconds = {}
    for case in chosen:
        started = time.perf_counter()
        run_case(case, case.smoke, out, out / "work" / case.name)
        seconds[case.name] = time.perf_counter() - started
        print(f"smoke {case.name}: {seconds[case.name]:.1f} s", flush=True)
    shutil.copyfile(doc, out / doc.name)
    render(out / doc.name, out, cases, keep_missing=names is not None)
    return seconds


def cmd_smoke(args: argparse.Namespace) -> int:
    names = args.only.split(",") if args.only else None
    load = os.getloadavg()[0]
    if args.out is not None:
        seconds = smoke(args.out, names)
    else:
        with tempfile.TemporaryDirectory(prefix="mixopt-bench-smoke-") as tmp:
            seconds = smoke(Path(tmp), names)
    print(
        f"smoke passed: {len(seconds)} cases in {sum(seconds.values()):.0f} s "
        f"(1-min load {load:.1f} at start, {os.getloadavg()[0]:.1f} at end)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="mixopt's benchmark suite"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the cases and their parameters").set_defaults(func=cmd_list)
    run = sub.add_parser("run", help="run one case and write its result file")
    run.add_argument("case")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--out", type=Path, default=RESULTS, help="folder for CASE.json")
    run.set_defaults(func=cmd_run)
    ren = sub.add_parser("render", help="rewrite BENCHMARKS.md's tables from the result files")
    ren.add_argument("--results", type=Path, default=RESULTS)
    ren.add_argument("--doc", type=Path, default=DOC)
    ren.add_argument("--check", action="store_true", help="exit 1 if the file would change")
    ren.set_defaults(func=cmd_render)
    smk = sub.add_parser("smoke", help="every case at tiny size into a temporary folder")
    smk.add_argument("--only", help="comma-separated case names")
    smk.add_argument("--out", type=Path, help="keep the results here instead")
    smk.set_defaults(func=cmd_smoke)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
