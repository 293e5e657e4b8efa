"""``mixopt status EXPERIMENT_DIR``: runs done / failed / diverged, and the current best.

Reads only files of the experiment folder (no Prefect API): ``proxy_runs/*.json`` (every run
record written so far, so it is live during a sweep; runs of earlier configs, which share the
store, are counted apart), ``runs_meta.parquet`` (labels and target
values of the last collected table), ``config.yaml`` (how many runs are planned), and
``chosen.json`` / ``target_handoff.json`` / ``comparison.parquet`` when the flow got that far.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from configs.experiment import ExperimentDir
from mixtures.errors import DataError


def _planned_runs(exp: ExperimentDir) -> int | None:
    path = exp.config
    if not path.is_file():
        return None
    cfg = yaml.safe_load(path.read_text()) or {}
    sweep, search = cfg.get("sweep", {}), cfg.get("search", {})
    n = int(sweep.get("n_runs", 0)) + (2 if sweep.get("include_baselines", True) else 0)
    if search.get("method") == "bo":
        n += int(search.get("bo_rounds", 0)) * int(search.get("bo_batch", 0))
    return n


def _of_this_config(exp: ExperimentDir) -> Callable[[dict[str, Any]], bool]:
    """Whether a run record is one of the saved config's proxy runs: trained with its ``proxy``
    (or ``search.bo_proxy``) settings and seed, on the plan's corpus when there is a plan.

    The run store is shared by every config the folder has held (run ids hash what a run
    depends on), so it can hold runs of an earlier config; those are counted apart. Without a
    saved ``proxy`` section every record counts."""
    from proxies.config import TrainConfig, omit_defaults

    cfg = yaml.safe_load(exp.config.read_text()) if exp.config.is_file() else None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("proxy"), dict):
        return lambda record: True

    def key(train: Any) -> str | None:
        try:
            dumped = TrainConfig.model_validate(train).model_dump(mode="json")
        except ValueError:
            return None
        return json.dumps(omit_defaults(dumped), sort_keys=True)

    search = cfg.get("search") or {}
    trains = {key(t) for t in (cfg["proxy"], search.get("bo_proxy")) if t is not None}
    seed = cfg.get("seed", 0)
    corpus = None
    if exp.plan.is_file():
        corpus = json.loads(exp.plan.read_text()).get("corpus_fingerprint")

    def belongs(record: dict[str, Any]) -> bool:
        spec = record.get("spec") or {}
        if "train" not in spec:
            return True
        return (
            spec.get("seed") == seed
            and (corpus is None or spec.get("corpus") == corpus)
            and key(spec["train"]) in trains
        )

    return belongs


def summarize_experiment(exp_dir: str | Path) -> dict[str, Any]:
    """Counts by status, planned runs, best measured run, chosen mixture and target comparison."""
    from proxies.runs import RunStore  # the run-record reader; tokenizers are not needed

    exp = ExperimentDir(Path(exp_dir))
    if not exp.root.is_dir():
        raise DataError(f"experiment folder {exp} does not exist")
    store = exp.proxy_store
    if not store.is_dir() and not exp.config.is_file():
        raise DataError(f"{exp} is not an experiment folder (no proxy_runs/ and no config.yaml)")
    stored = RunStore(store).records() if store.is_dir() else []
    records = list(filter(_of_this_config(exp), stored))
    counts = Counter(r["result"]["status"] for r in records)
    summary: dict[str, Any] = {
        "experiment_dir": str(exp),
        "planned": _planned_runs(exp),
        "records": len(records),
        "other_records": len(stored) - len(records),
        "status": {s: counts.get(s, 0) for s in ("ok", "failed", "diverged")},
        "best": None,
        "chosen": None,
        "comparison": None,
    }
    meta_path = exp.table_meta("runs")
    if meta_path.is_file():
        ok = pl.read_parquet(meta_path).filter(pl.col("target").is_not_null()).sort("target")
        if ok.height:
            summary["best"] = ok.select("label", "run_id", "target").row(0, named=True)
        summary["collected"] = pl.read_parquet(meta_path).height
    bo_meta = exp.table_meta("runs_bo")  # search.bo_proxy: the rounds' runs, another scale
    if bo_meta.is_file():
        ok = pl.read_parquet(bo_meta).filter(pl.col("target").is_not_null()).sort("target")
        if ok.height:
            summary["best_bo_proxy"] = ok.select("label", "run_id", "target").row(0, named=True)
    if exp.chosen.is_file():
        summary["chosen"] = json.loads(exp.chosen.read_text())
    if exp.comparison.is_file():
        summary["comparison"] = pl.read_parquet(exp.comparison).to_dicts()
    if exp.target_handoff.is_file():
        summary["target_handoff"] = json.loads(exp.target_handoff.read_text())
    return summary


def format_status(summary: dict[str, Any]) -> str:
    """The summary as a few readable lines."""
    st = summary["status"]
    planned = summary["planned"]
    of = f" of {planned} planned" if planned else ""
    lines = [
        f"experiment: {summary['experiment_dir']}",
        f"proxy runs: {summary['records']} recorded{of}: {st['ok']} ok, "
        f"{st['failed']} failed, {st['diverged']} diverged",
    ]
    if summary.get("other_records"):
        lines.append(
            f"  (and {summary['other_records']} runs of earlier configs in the run store, "
            "reused where a config needs them)"
        )
    best = summary["best"]
    if best is not None:
        lines.append(f"best measured: {best['label'] or '?'} {best['run_id']} {best['target']:.4f}")
    larger = summary.get("best_bo_proxy")
    if larger is not None:
        lines.append(
            f"best at the bo_proxy scale: {larger['label'] or '?'} {larger['run_id']} "
            f"{larger['target']:.4f}"
        )
    chosen = summary["chosen"]
    if chosen is not None:
        weights = ", ".join(
            f"{d}={w:.3f}" for d, w in sorted(chosen["mixture"].items(), key=lambda kv: -kv[1])
        )
        lines.append(f"chosen mixture: {weights}")
        lines.append(f"predicted target: {chosen['predicted']:.4f} ({chosen['surrogate']})")
        lines += [f"warning: {w}" for w in chosen.get("warnings") or []]
    handoff = summary.get("target_handoff")
    if handoff is not None:
        lines.append(handoff["message"])
    if summary["comparison"]:
        lines += _comparison_lines(summary["comparison"])
    if chosen is None and best is None:
        lines.append("no finished run collected yet")
    return "\n".join(lines)


def _comparison_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The target runs per mixture, then their paired comparison and verdict."""
    from mixtures.report import paired_lines  # imported here: it loads matplotlib

    lines = [
        f"target run {r['label']:<10} mean {r['mean']:.4f} std {r['std']:.4f} ({r['seeds']} seeds)"
        for r in rows
    ]
    return lines + paired_lines(rows)


def watch(exp_dir: str | Path, *, interval: float, timeout: float | None = None) -> dict:
    """A tqdm bar of recorded runs out of the planned ones, until all are recorded."""
    from tqdm import tqdm

    summary = summarize_experiment(exp_dir)
    started = time.monotonic()
    with tqdm(total=summary["planned"], desc="proxy runs", unit="run") as bar:
        while True:
            bar.n = summary["records"]
            bar.set_postfix(failed=summary["status"]["failed"], refresh=False)
            bar.refresh()
            done = summary["planned"] is not None and summary["records"] >= summary["planned"]
            if done or (timeout is not None and time.monotonic() - started > timeout):
                return summary
            time.sleep(interval)
            summary = summarize_experiment(exp_dir)


def cmd_status(args: argparse.Namespace) -> int:
    """Print the status of one experiment folder (optionally watch it fill)."""
    # DataError goes up to `mixopt`'s main, which prints it and exits with code 2.
    if args.watch:
        watch(args.experiment, interval=args.watch)
    summary = summarize_experiment(args.experiment)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_status(summary))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``status`` command to the ``mixopt`` parser."""
    text = "summarize an experiment folder: runs done/failed/diverged and the current best"
    parser = subparsers.add_parser("status", help=text, description=text)
    parser.add_argument("experiment", help="experiment folder, e.g. runs/demo")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="show a progress bar of recorded runs, refreshed every SECONDS, until all are done",
    )
    parser.set_defaults(func=cmd_status)
