"""Plan a sweep's runs and turn finished run records into tables (pure: no prefect)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, DataError
from mixtures.mixture import Mixture
from mixtures.runtable import RunTable
from mixtures.sampling import SamplerConfig, sample_mixtures, token_prior

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


def split_domains(
    corpus_domains: Sequence[str], target_domains: Sequence[str], *, holdout: bool
) -> tuple[list[str], list[str]]:
    """(training domains, evaluated domains). Held-out target domains are evaluated, not trained."""
    unknown = sorted(set(target_domains) - set(corpus_domains))
    if unknown:
        raise ConfigError(
            f"target names domain(s) {unknown} not in the corpus {sorted(corpus_domains)}"
        )
    train = sorted(d for d in corpus_domains if not (holdout and d in target_domains))
    if len(train) < 2:
        raise ConfigError(f"need at least 2 training domains, got {train}")
    return train, sorted(corpus_domains)


def natural_mixture(tokens: Mapping[str, int], domains: Sequence[str]) -> Mixture:
    """Token-proportional weights: what training on everything as it comes would do."""
    counts = np.array([float(tokens[d]) for d in domains])
    if counts.sum() <= 0:
        raise DataError(f"training domains {list(domains)} have no tokens")
    return Mixture.from_array(domains, counts / counts.sum())


def sample_sweep(
    n: int,
    *,
    domains: Sequence[str],
    tokens: Mapping[str, int],
    bounds: Bounds,
    sampler: SamplerConfig,
    rng: np.random.Generator,
) -> list[Mixture]:
    """``n`` distinct mixtures from the token-count prior (RegMix) inside the bounds."""
    counts = np.array([float(tokens[d]) for d in domains])
    prior = token_prior(counts, temperature=sampler.temperature)
    x = sample_mixtures(n, prior=prior, bounds=bounds, rng=rng, config=sampler)
    return [Mixture.from_array(domains, row, tolerance=1e-6) for row in x]


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


def _paired_margins(ok: pl.DataFrame, labels: list[str]) -> pl.Series:
    """Std over seeds of (label - chosen) on the seeds both ran.

    Every mixture's run with seed s shares its initialisation and batch-index stream, so the
    per-seed difference removes most of the seed noise; its spread is shown beside the unpaired
    criterion, which stays the one ``beats_all_baselines`` uses.
    """
    chosen = ok.filter(pl.col("label") == "chosen").select("seed", pl.col("target").alias("c"))
    out: list[float | None] = []
    for label in labels:
        pairs = ok.filter(pl.col("label") == label).join(chosen, on="seed")
        diff = (pairs["target"] - pairs["c"]) if label != "chosen" else None
        out.append(float(diff.std(ddof=1)) if diff is not None and len(diff) > 1 else None)
    return pl.Series("paired_margin_std", out, dtype=pl.Float64)


def compare_target_runs(meta: pl.DataFrame) -> pl.DataFrame:
    """Per mixture label: mean, std and count of the target over seeds, best first.

    ``beats_all_baselines`` is true for the chosen mixture when, against every baseline, its mean
    is lower by more than the larger of the two seed spreads (standard deviations).
    ``paired_margin_std`` is the spread of the per-seed differences to the chosen mixture.
    """
    ok = meta.filter(pl.col("status") == "ok")
    if ok.is_empty():
        raise DataError("no target run finished ok; nothing to compare")
    summary = (
        ok.group_by("label")
        .agg(
            pl.col("target").mean().alias("mean"),
            pl.col("target").std(ddof=1).fill_null(0.0).alias("std"),
            pl.col("target").min().alias("min"),
            pl.col("target").max().alias("max"),
            pl.len().alias("seeds"),
        )
        .sort("mean")
    )
    rows = {r["label"]: r for r in summary.iter_rows(named=True)}
    chosen = rows.get("chosen")
    margins: list[float | None] = []
    for r in summary.iter_rows(named=True):
        if chosen is None or r["label"] == "chosen":
            margins.append(None)
        else:
            margins.append(r["mean"] - chosen["mean"])
    summary = summary.with_columns(
        pl.Series("margin_vs_chosen", margins, dtype=pl.Float64),
        _paired_margins(ok, summary["label"].to_list()),
    )
    beats = (
        chosen is not None
        and len(rows) > 1
        and all(
            r["mean"] - chosen["mean"] > max(r["std"], chosen["std"])
            for label, r in rows.items()
            if label != "chosen"
        )
    )
    return summary.with_columns(
        (pl.col("label") == "chosen").and_(pl.lit(beats)).alias("beats_all_baselines")
    )
