"""Surrogate fit quality on RegMix's released runs (issue 3, item 6).

Train on N of the 512 1M-parameter runs (N = 16 ... 512, 10 random subsets each; N = 512 is one
subset, fitted once), test on the 256 unseen 1M runs and on the 64 unseen 1B runs. Target:
Pile-CC validation loss. Scores: Spearman and Pearson (x100), MAE. No tuning or early stopping on
test runs: every choice inside a surrogate uses its training subset only.

    .venv/bin/python benchmarks/surrogate_fit.py [--surrogates gp,ensemble] [--repeats 10]

Writes benchmarks/results/surrogate_fit.json and .md (merged with earlier runs by surrogate).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixtures.evaluation import cross_validate  # noqa: E402
from mixtures.importers import import_regmix  # noqa: E402
from mixtures.runtable import RunTable  # noqa: E402

REGMIX = ROOT / "data" / "regmix"
TARGET = "metric/the_pile_pile_cc_val_loss"
SIZES = (16, 32, 64, 128, 256, 512)
SURROGATES = ("regmix_lgbm", "lightgbm", "ridge", "loglinear", "mixing_law", "gp", "ensemble")
RESULTS = ROOT / "benchmarks" / "results"


def load(mixtures: str, results: str) -> RunTable:
    """One RegMix file pair as a run table."""
    return import_regmix(REGMIX / mixtures, REGMIX / results).table


def machine() -> dict[str, Any]:
    """nproc, CPU model, Python and platform, for the results files."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_1min_at_end": load,
        "git": _git_sha(),
    }


def run_meta(script: str, argv: list[str] | None, **extra: Any) -> dict[str, Any]:
    """What a results file records of its run: command, date, machine, then ``extra``."""
    return {
        "command": f"python benchmarks/{script} " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **extra,
    }


def save_results(out: Path, meta: dict[str, Any], rows: Any) -> None:
    """``{"meta": meta, "results": rows}`` as JSON at ``out`` (folders created)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=1))


def load_results(out: Path) -> tuple[dict[str, Any], Any]:
    """``(meta, rows)`` of a file ``save_results`` wrote (for ``--render-only``)."""
    saved = json.loads(out.read_text())
    return saved["meta"], saved["results"]


def rows_by_case(out: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The result rows of a saved benchmark file, keyed by ``(pool, target)``."""
    return {(r["pool"], r["target"]): r for r in load_results(out)[1]}


def case_args(doc: str, name: str, argv: list[str] | None) -> argparse.Namespace:
    """The options of a resumable (pool, target) replay script: ``--olmix``, ``--repeats``,
    ``--seed``, ``--workers``, ``--out`` (default ``results/<name>.json``), ``--fresh`` and
    ``--render-only``; ``doc``'s first line describes the script."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--olmix", type=Path, help="folder with Olmix's swarm CSVs")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument("--out", type=Path, default=RESULTS / f"{name}.json")
    p.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    return p.parse_args(argv)


def run_cases_resumable(
    out: Path,
    cases: list[tuple[str, str]],
    run: Callable[[str, str], dict[str, Any]],
    *,
    fresh: bool,
    meta: Callable[[float], dict[str, Any]],
    settings: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run each ``(pool, target)`` case not yet in ``out`` (all with ``fresh``), saving after
    each, so an interrupted run resumes; ``meta(wall_seconds)`` describes the run and
    ``settings`` (repeats, seed, ...) are saved with it. Resuming a file made with other
    settings is refused (files from before settings were saved: their repeats are compared).
    Returns the results file's ``(meta, rows)``."""
    rows: list[dict[str, Any]] = []
    spent, info = 0.0, None
    if out.exists() and not fresh:
        info, rows = load_results(out)
        spent = info["wall_seconds"]
        saved = info.get("settings", {"repeats": info.get("repeats")})
        differ = {k: (saved[k], v) for k, v in settings.items() if k in saved and saved[k] != v}
        if differ:
            raise SystemExit(
                f"{out} was run with other settings (saved, asked): {differ}; use --fresh or "
                "another --out"
            )
    done = {(r["pool"], r["target"]) for r in rows}
    for pool, target in cases:
        if (pool, target) in done:
            continue
        started = time.perf_counter()
        rows.append(run(pool, target))
        spent += time.perf_counter() - started
        info = {**meta(spent), "settings": dict(settings)}
        save_results(out, info, rows)
    if info is None:
        raise SystemExit(f"no case to run and no results in {out}")
    return info, rows


def write_md(out: Path, md: str) -> None:
    """The report beside the JSON (``out`` with ``.md``), and on stdout."""
    out.with_suffix(".md").write_text(md)
    print(md)


def header_md(title: str, meta: dict[str, Any]) -> str:
    """Title, command, date, machine and wall time of a replay report."""
    return (
        f"# {title}\n\nCommand: `{meta['command']}`  \nDate: {meta['date']}; machine: "
        f"{meta['machine']}; {meta['wall_seconds']:.0f} s in all\n\n"
    )


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def run(surrogates: list[str], repeats: int, seed: int, workers: int = 1) -> dict[str, Any]:
    train = load("train_mixture_1m.csv", "train_pile_loss_1m.csv")
    test_1m = load("test_mixture_1m.csv", "test_pile_loss_1m.csv")
    test_1b = load("test_mixture_1B.csv", "test_pile_loss_1B.csv")
    d = train.domains
    tests = {
        "1M": (test_1m.weights(d), test_1m.target(TARGET)),
        "1B": (test_1b.weights(d), test_1b.target(TARGET)),
    }
    out: dict[str, Any] = {}
    for name in surrogates:
        started = time.perf_counter()
        res = cross_validate(
            train.weights(),
            train.target(TARGET),
            surrogate=name,
            train_sizes=SIZES,
            repeats=repeats,
            seed=seed,
            tests=tests,
            workers=workers,
        )
        res["wall_seconds"] = time.perf_counter() - started
        out[name] = res
        print(f"{name}: {res['wall_seconds']:.0f} s", flush=True)
        print(table_md({name: res}), flush=True)
    return out


def table_md(results: dict[str, Any]) -> str:
    """Markdown table: one row per surrogate, Spearman x100 1M / 1B per N."""
    head = "| surrogate | " + " | ".join(f"N={n}" for n in SIZES) + " | wall s |"
    lines = [head, "|" + "---|" * (len(SIZES) + 2)]
    for name, res in results.items():
        cells = []
        for n in SIZES:
            by = {s["test"]: s for s in res["summary"] if s["size"] == n}
            cells.append(" / ".join(_pct(by.get(t, {}).get("spearman_mean")) for t in ("1M", "1B")))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {res['wall_seconds']:.0f} |")
    return "\n".join(lines)


def pearson_md(results: dict[str, Any]) -> str:
    head = "| surrogate | " + " | ".join(f"N={n}" for n in SIZES) + " |"
    lines = [head, "|" + "---|" * (len(SIZES) + 1)]
    for name, res in results.items():
        cells = []
        for n in SIZES:
            by = {s["test"]: s for s in res["summary"] if s["size"] == n}
            cells.append(" / ".join(_pct(by.get(t, {}).get("pearson_mean")) for t in ("1M", "1B")))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--surrogates", default=",".join(SURROGATES))
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    p.add_argument("--out", type=Path, default=RESULTS / "surrogate_fit.json")
    args = p.parse_args(argv)
    results = run(args.surrogates.split(","), args.repeats, args.seed, args.workers)
    merged = json.loads(args.out.read_text())["results"] if args.out.exists() else {}
    merged.update(results)
    ordered = {
        k: merged[k] for k in [*SURROGATES, *sorted(set(merged) - set(SURROGATES))] if k in merged
    }
    meta = {
        "command": "python benchmarks/surrogate_fit.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "target": TARGET,
        "train": "512 RegMix 1M runs",
        "tests": {"1M": "256 unseen 1M runs", "1B": "64 unseen 1B runs"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({**meta, "results": ordered}, indent=1) + "\n")
    m = meta["machine"]
    md = [
        "# Surrogate fit on RegMix's runs",
        "",
        f"Command: `{meta['command']}` (last run; rows merge earlier runs by surrogate)  ",
        f"Date: {meta['date']}; machine: {m['nproc']} cores, {m['cpu']}, "
        f"1-min load at the end {m['load_1min_at_end']:.1f} (the machine is shared)",
        "",
        f"Target {TARGET}; train N of 512 1M runs ({args.repeats} random subsets, N=512 once).",
        "Spearman x100, test on 256 unseen 1M runs / 64 unseen 1B runs:",
        "",
        table_md(ordered),
        "",
        "Pearson x100 (1M / 1B):",
        "",
        pearson_md(ordered),
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
