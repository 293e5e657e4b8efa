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
import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from configs.experiment import ExperimentDir
from mixtures.errors import ConfigError, DataError

#: Columns of a run table's metadata (``runs_meta.parquet``) that the status reads, and their
#: kind of values.
_META_COLUMNS = {"label": "text", "run_id": "text", "target": "number"}
#: Columns of ``comparison.parquet`` that the status shows.
_COMPARISON_COLUMNS = {"label": "text", "mean": "number", "std": "number", "seeds": "integer"}
#: Whether a Parquet column's dtype holds values of a kind (an all-null column holds any).
_KINDS = {
    "text": lambda t: t in (pl.String, pl.Categorical, pl.Null),
    "number": lambda t: t.is_numeric() or t == pl.Null,
    "integer": lambda t: t.is_integer() or t == pl.Null,
}


def _saved_config(exp: ExperimentDir) -> dict[str, Any] | None:
    """``config.yaml`` as a mapping (None when the folder has none); DataError naming the file
    when it is not a readable YAML mapping."""
    path = exp.config
    if not path.is_file():
        return None
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise DataError(f"saved config {path} is not readable YAML: {err}") from None
    if not isinstance(cfg, dict):
        raise DataError(f"saved config {path} must hold a mapping, got {type(cfg).__name__}")
    return cfg


def _planned_runs(exp: ExperimentDir) -> int | None:
    cfg = _saved_config(exp)
    if cfg is None:
        return None
    sweep, search = cfg.get("sweep") or {}, cfg.get("search") or {}
    try:
        n = int(sweep.get("n_runs", 0)) + (2 if sweep.get("include_baselines", True) else 0)
        if search.get("method") == "bo":
            n += int(search.get("bo_rounds", 0)) * int(search.get("bo_batch", 0))
    except (AttributeError, TypeError, ValueError):
        raise DataError(
            f"saved config {exp.config}: sweep.n_runs, search.bo_rounds and search.bo_batch "
            f"must be whole numbers, got sweep {sweep!r:.80}, search {search!r:.80}"
        ) from None
    return n


def _of_this_config(exp: ExperimentDir) -> Callable[[dict[str, Any]], bool]:
    """Whether a run record is one of the saved config's proxy runs: trained with its ``proxy``
    (or ``search.bo_proxy``) settings and seed, on the plan's corpus when there is a plan.

    The run store is shared by every config the folder has held (run ids hash what a run
    depends on), so it can hold runs of an earlier config; those are counted apart. Without a
    saved ``proxy`` section every record counts."""
    from proxies.config import TrainConfig, omit_defaults

    cfg = _saved_config(exp)
    if cfg is None or not isinstance(cfg.get("proxy"), dict):
        return lambda record: True

    def key(train: Any) -> str | None:
        try:
            dumped = TrainConfig.model_validate(train).model_dump(mode="json")
        except ValueError:
            return None
        return json.dumps(omit_defaults(dumped), sort_keys=True)

    search = cfg.get("search") or {}
    bo_proxy = search.get("bo_proxy") if isinstance(search, dict) else None
    trains = {key(t) for t in (cfg["proxy"], bo_proxy) if t is not None}
    seed = cfg.get("seed", 0)
    corpus = None
    if exp.plan.is_file():
        corpus = _read_json(exp.plan, "experiment plan").get("corpus_fingerprint")

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
    """Counts by status, planned runs, best measured run, chosen mixture and target comparison.
    DataError naming the file when one of them is not what the flows write."""
    exp = ExperimentDir(Path(exp_dir))
    if exp.root.exists() and not exp.root.is_dir():
        raise DataError(f"{exp} is a file, not an experiment folder")
    if not exp.root.is_dir():
        raise DataError(f"experiment folder {exp} does not exist")
    store = exp.proxy_store
    if not store.is_dir() and not exp.config.is_file():
        raise DataError(f"{exp} is not an experiment folder (no proxy_runs/ and no config.yaml)")
    stored = _read_records(store) if store.is_dir() else []
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
        meta = _read_parquet(meta_path, _META_COLUMNS)
        ok = meta.filter(pl.col("target").is_not_null()).sort("target")
        if ok.height:
            summary["best"] = ok.select(list(_META_COLUMNS)).row(0, named=True)
        summary["collected"] = meta.height
    bo_meta = exp.table_meta("runs_bo")  # search.bo_proxy: the rounds' runs, another scale
    if bo_meta.is_file():
        meta = _read_parquet(bo_meta, _META_COLUMNS)
        ok = meta.filter(pl.col("target").is_not_null()).sort("target")
        if ok.height:
            summary["best_bo_proxy"] = ok.select(list(_META_COLUMNS)).row(0, named=True)
    if exp.chosen.is_file():
        summary["chosen"] = _read_chosen(exp.chosen)
    if exp.comparison.is_file():
        summary["comparison"] = _read_parquet(exp.comparison, _COMPARISON_COLUMNS).to_dicts()
    if exp.target_handoff.is_file():
        handoff = _read_json(exp.target_handoff, "target handoff")
        if not isinstance(handoff.get("message"), str):
            raise DataError(f"target handoff {exp.target_handoff} has no message")
        summary["target_handoff"] = handoff
    return summary


def _read_records(store: Path) -> list[dict[str, Any]]:
    """Every run record of the store, in run-id order; DataError naming a file that is not
    JSON or not a run record (an object with ``result.status``)."""
    records = []
    for path in sorted(store.glob("*.json")):
        record = _read_json(path, "run record", hint="; delete it to rerun")
        result, spec = record.get("result"), record.get("spec")
        if not (isinstance(result, dict) and isinstance(result.get("status"), str)) or not (
            spec is None or isinstance(spec, dict)
        ):
            raise DataError(
                f"run record {path} is not a run record (no result.status, or a spec that is "
                "not an object); delete it to rerun"
            )
        records.append(record)
    return records


def _read_json(path: Path, what: str, *, hint: str = "") -> dict[str, Any]:
    """A JSON object file; DataError naming ``what`` and the file otherwise."""
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{what} {path} is corrupt ({err}){hint}") from None
    if not isinstance(data, dict):
        raise DataError(f"{what} {path} must hold a JSON object, got {type(data).__name__}{hint}")
    return data


def _read_chosen(path: Path) -> dict[str, Any]:
    """``chosen.json``: the mixture (domain -> weight), its predicted target and surrogate."""
    chosen = _read_json(path, "chosen mixture")
    mixture = chosen.get("mixture")
    numbers = isinstance(mixture, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in mixture.values()
    )
    predicted = chosen.get("predicted")
    number = isinstance(predicted, int | float) and not isinstance(predicted, bool)
    warnings = chosen.get("warnings")
    listed = warnings is None or (
        isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)
    )
    if not (numbers and number and listed and isinstance(chosen.get("surrogate"), str)):
        raise DataError(
            f"chosen mixture {path} must hold a mixture of domain: weight numbers, the "
            "predicted number, the surrogate's name and a list of warnings"
        )
    return chosen


def _read_parquet(path: Path, columns: dict[str, str]) -> pl.DataFrame:
    """A Parquet table with at least ``columns``, each of its kind (``_KINDS``); DataError naming
    the file and the column otherwise."""
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # polars raises several unrelated types for unreadable files
        raise DataError(f"{path} is not a readable Parquet file: {err}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}; it has {frame.columns}")
    wrong = [
        f"{c} ({frame.schema[c]}, not {kind})"
        for c, kind in columns.items()
        if not _KINDS[kind](frame.schema[c])
    ]
    if wrong:
        raise DataError(f"{path} has column(s) of the wrong type: {', '.join(wrong)}")
    return frame


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
        f"target run {r['label']:<10} mean {_number(r['mean'])} std {_number(r['std'])} "
        f"({r['seeds']} seeds)"
        for r in rows
    ]
    return lines + paired_lines(rows)


def _number(value: float | None) -> str:
    """A mean or spread, "n/a" where no seed gave one."""
    return "n/a" if value is None else f"{value:.4f}"


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
    if args.watch is not None and not (math.isfinite(args.watch) and args.watch > 0):
        raise ConfigError(f"--watch takes a number of seconds > 0, got {args.watch:g}")
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
