"""The target runs' verdict: each mixture's target over seeds, and whether the chosen mixture
beats every baseline by more than the seed spread."""

from __future__ import annotations

import polars as pl

from mixtures.errors import DataError


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
        spread = diff.std(ddof=1) if diff is not None and len(diff) > 1 else None
        # A float column's std is a float, or None when fewer than two values are not null.
        out.append(spread if isinstance(spread, float) else None)
    return pl.Series("paired_margin_std", out, dtype=pl.Float64)


def compare_target_runs(meta: pl.DataFrame) -> pl.DataFrame:
    """Per mixture label: mean, std and count of the target over seeds, best first.

    ``beats_all_baselines`` is true for the chosen mixture when, against every baseline, its mean
    is lower by more than the larger of the two seed spreads (standard deviations); never with a
    single seed, whose spread is unknown.
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
        and all(r["seeds"] >= 2 for r in rows.values())  # one seed has no spread to beat
        and all(
            r["mean"] - chosen["mean"] > max(r["std"], chosen["std"])
            for label, r in rows.items()
            if label != "chosen"
        )
    )
    return summary.with_columns(
        (pl.col("label") == "chosen").and_(pl.lit(beats)).alias("beats_all_baselines")
    )
