"""Finished run records as tables: the run table of ok runs (with the target metric) and the
metadata of every run, whatever its status."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from mixtures.errors import ConfigError, DataError
from mixtures.runtable import RunTable

#: Per-run metadata kept beside the run table (every status, not only ok runs).
RUN_META_SCHEMA = {
    "run_id": pl.Utf8,
    "kind": pl.Utf8,
    "label": pl.Utf8,
    "status": pl.Utf8,
    "seed": pl.Int64,
    "target": pl.Float64,
    "wall_seconds": pl.Float64,
    "tokens_per_second": pl.Float64,
    "non_embedding_params": pl.Int64,
    "tokens": pl.Int64,
    "error": pl.Utf8,
}
METRIC_PREFIX = "val_loss/"


def target_fn(
    kind: str,
    *,
    domain: str | None,
    weights: Mapping[str, float],
    eval_domains: Sequence[str],
    evaluator: str | None = None,
) -> Callable[[Mapping[str, Any]], float]:
    """Map a run's result (``TrainResult.to_json()``) to the one number to minimise: a loss of
    its per-domain validation losses, or (``custom``) its evaluator's value."""
    if kind == "custom":
        if evaluator is None:
            raise ConfigError("target kind 'custom' needs an evaluator")
        return lambda res: float(res["evals"][evaluator])
    if kind == "domain":
        if domain is None:
            raise ConfigError("target kind 'domain' needs a domain")
        return lambda res: float(res["val_loss"][domain])
    if kind == "weighted":
        total = sum(weights.values())
        if total <= 0:
            raise ConfigError(f"target weights sum to {total}, expected > 0")
        return lambda res: sum(w * res["val_loss"][d] for d, w in weights.items()) / total
    return lambda res: float(np.mean([res["val_loss"][d] for d in eval_domains]))


def records_to_tables(
    records: Sequence[Mapping[str, Any]],
    *,
    train_domains: Sequence[str],
    target: Callable[[Mapping[str, Any]], float],
    labels: Mapping[str, str] | None = None,
) -> tuple[RunTable | None, pl.DataFrame]:
    """(run table of ok runs with a ``target`` metric, metadata of every run)."""
    meta_rows, ok = [], []
    for rec in records:
        res, spec = rec["result"], rec["spec"]
        if list(spec["domains"]) != list(train_domains):
            raise DataError(
                f"run {rec['run_id']} trained on {spec['domains']}, "
                f"expected domains {list(train_domains)}"
            )
        value = target(res) if res["status"] == "ok" else None
        if value is not None and not math.isfinite(value):
            value = None
        meta_rows.append(
            {
                "run_id": rec["run_id"],
                "kind": spec["kind"],
                "label": (labels or {}).get(rec["run_id"], ""),
                "status": res["status"],
                "seed": spec["seed"],
                "target": value,
                "wall_seconds": res["wall_seconds"],
                "tokens_per_second": res["tokens_per_second"],
                "non_embedding_params": res["non_embedding_params"],
                "tokens": res["tokens"],
                "error": res["error"],
            }
        )
        if value is not None:
            ok.append((rec, value))
    meta = pl.DataFrame(meta_rows, schema=RUN_META_SCHEMA)
    if not ok:
        return None, meta
    eval_domains = sorted(ok[0][0]["result"]["val_loss"])
    metrics = {"target": np.array([v for _, v in ok])}
    for d in eval_domains:
        metrics[METRIC_PREFIX + d] = np.array([r["result"]["val_loss"][d] for r, _ in ok])
    table = RunTable.from_arrays(
        [r["run_id"] for r, _ in ok],
        list(train_domains),
        np.array([r["spec"]["weights"] for r, _ in ok]),
        metrics,
        fidelity={
            "model_params": np.array([r["result"]["non_embedding_params"] for r, _ in ok], float),
            "tokens": np.array([r["result"]["tokens"] for r, _ in ok], float),
        },
        cost=np.array([r["result"]["wall_seconds"] for r, _ in ok]),
    )
    return table, meta
