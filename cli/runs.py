"""``mixopt runs``: import existing runs into a run table and summarize run tables.

No Prefect here: importing is a plain file conversion, quick enough to run without a flow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mixtures.errors import ConfigError
from mixtures.importers import ImportReport, import_olmix, import_regmix, import_wide
from mixtures.runtable import RunTable

#: Options each format uses; any other format-specific option given is an error, not ignored.
_FORMAT_OPTIONS = {
    "regmix": {"mixtures", "results"},
    "olmix": {"ratios", "metrics"},
    "wide": {"csv", "weights_prefix", "weights", "metrics", "fidelity", "cost", "id_column"},
}
_REQUIRED = {"regmix": ("mixtures", "results"), "olmix": ("ratios", "metrics"), "wide": ("csv",)}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``runs`` command group (``import``, ``show``) to the ``mixopt`` parser."""
    runs = subparsers.add_parser("runs", help="import existing runs and inspect run tables")
    sub = runs.add_subparsers(dest="runs_command", metavar="{import,show}", required=True)
    _add_import(sub)
    show = sub.add_parser("show", help="summarize a run table (runs, domains, metrics)")
    show.add_argument("table", type=Path, metavar="RUNS.parquet", help="run table to summarize")
    show.set_defaults(func=_show)


def _add_import(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser(
        "import",
        help="convert RegMix, Olmix or wide CSV runs into a run table (Parquet)",
        description="Formats: regmix (--mixtures, --results), olmix (--ratios, --metrics), "
        "wide (--csv with --weights-prefix or --weights, optional --metrics, --fidelity, "
        "--cost, --id-column).",
    )
    imp.add_argument("--format", required=True, choices=sorted(_FORMAT_OPTIONS))
    imp.add_argument("--out", required=True, type=Path, help="run table to write (.parquet)")
    imp.add_argument("--mixtures", type=Path, help="regmix: mixture CSV (index, train_the_pile_*)")
    imp.add_argument("--results", type=Path, help="regmix: results CSV (index, metric/*)")
    imp.add_argument("--ratios", type=Path, help="olmix: *_ratios.csv")
    imp.add_argument("--metrics", help="olmix: *_metrics.csv; wide: comma-separated metric columns")
    imp.add_argument("--csv", type=Path, help="wide: the CSV, one row per run")
    imp.add_argument("--weights-prefix", help="wide: weight columns start with this (stripped)")
    imp.add_argument("--weights", help="wide: comma-separated weight columns")
    imp.add_argument("--fidelity", help="wide: comma-separated fidelity columns")
    imp.add_argument("--cost", help="wide: cost column")
    imp.add_argument("--id-column", help="wide: run id column (default: <file stem>:<row>)")
    imp.add_argument(
        "--drop-invalid", action="store_true", help="drop bad rows (counted) instead of failing"
    )
    imp.add_argument(
        "--tolerance", type=float, default=0.005, help="allowed |sum of weights - 1| per row"
    )
    imp.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from cli.preflight import check_output_file, raise_problems

    _check_options(args)
    raise_problems(check_output_file(args.out, "--out"))
    report = _read(args)
    out = report.table.write(args.out)
    t = report.table
    print(f"imported {len(t)} runs, {len(t.domains)} domains, {len(t.metrics)} metrics -> {out}")
    print(f"rows read: {report.rows_read}")
    dropped = ", ".join(f"{k}={v}" for k, v in report.dropped.items()) or "none"
    print(f"dropped: {dropped}")
    if report.skipped_columns:
        print(f"skipped non-numeric columns: {', '.join(report.skipped_columns)}")
    return 0


def _check_options(args: argparse.Namespace) -> None:
    fmt = args.format
    missing = [f"--{o.replace('_', '-')}" for o in _REQUIRED[fmt] if getattr(args, o) is None]
    if missing:
        raise ConfigError(f"--format {fmt} needs {', '.join(missing)}")
    foreign = sorted(
        f"--{o.replace('_', '-')}"
        for opts in _FORMAT_OPTIONS.values()
        for o in opts - _FORMAT_OPTIONS[fmt]
        if getattr(args, o) is not None
    )
    if foreign:
        raise ConfigError(
            f"option(s) {', '.join(sorted(set(foreign)))} do not apply to --format {fmt}"
        )


def _read(args: argparse.Namespace) -> ImportReport:
    common = {"drop_invalid": args.drop_invalid, "tolerance": args.tolerance}
    if args.format == "regmix":
        return import_regmix(args.mixtures, args.results, **common)
    if args.format == "olmix":
        return import_olmix(args.ratios, Path(args.metrics), **common)
    return import_wide(
        args.csv,
        weights=_names(args.weights),
        weights_prefix=args.weights_prefix,
        metrics=_names(args.metrics),
        fidelity=_names(args.fidelity) or (),
        cost=args.cost,
        id_column=args.id_column,
        **common,
    )


def _names(text: str | None) -> list[str] | None:
    """Comma-separated column names; None when the option was not given."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ConfigError(f"empty column name in {text!r}")
    return names


def _show(args: argparse.Namespace) -> int:
    t = RunTable.read(args.table)
    print(f"{args.table}: {len(t)} runs, {len(t.domains)} domains, {len(t.metrics)} metrics")
    print(f"domains: {', '.join(t.domains)}")
    if t.fidelities:
        print(f"fidelities: {', '.join(t.fidelities)}")
    if t.metrics:
        width = max(len(m) for m in t.metrics)
        print(f"{'metric':<{width}}  {'runs':>5}  {'min':>10}  {'median':>10}")
        for m in t.metrics:
            v = t.values("metric", m)
            v = v[~np.isnan(v)]
            print(f"{m:<{width}}  {v.size:>5}  {v.min():>10.4g}  {np.median(v):>10.4g}")
    return 0
