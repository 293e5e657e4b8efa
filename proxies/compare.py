"""The target runs' verdict: each mixture's target over seeds, and, paired by seed, whether the
chosen mixture is lower than each baseline with 95% confidence.

Every mixture's target run with seed s shares its initialisation and batch-index stream, so the
per-seed difference (baseline - chosen) removes most of the seed noise that an unpaired
comparison of means has to beat; on the demo the unpaired criterion flipped between machines
while the chosen mixture won seed for seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl
from scipy import stats

from mixtures.errors import DataError

#: Two-sided confidence level of the paired difference's interval.
CONFIDENCE = 0.95
#: ``seeds_needed`` looks no further: beyond this the difference is too small to settle by seeds.
MAX_SEEDS = 100

Verdict = Literal["better", "worse", "inconclusive"]


@dataclass(frozen=True)
class PairedComparison:
    """The chosen mixture against one baseline on the seeds both ran ok.

    ``diff`` is baseline - chosen per seed (positive: chosen lower, which is better). ``se``,
    ``lo`` and ``hi`` (the Student-t interval at ``CONFIDENCE``) need two pairs; ``sign_p`` is
    the one-sided exact sign test, P[wins >= observed] for a fair coin over all ``pairs``, so a
    tie counts as a seed not won.
    """

    pairs: int
    wins: int
    mean: float | None
    se: float | None
    lo: float | None
    hi: float | None
    sign_p: float | None
    seeds_needed: int | None

    @property
    def verdict(self) -> Verdict:
        """better: the interval lies above 0; worse: below 0; else, and always with fewer than
        2 pairs, inconclusive."""
        if self.lo is not None and self.lo > 0:
            return "better"
        if self.hi is not None and self.hi < 0:
            return "worse"
        return "inconclusive"


def t_quantile(pairs: int, *, level: float = CONFIDENCE) -> float:
    """Student-t quantile for a two-sided ``level`` interval of a mean over ``pairs`` values."""
    return float(stats.t.ppf(0.5 + level / 2, pairs - 1))


def seeds_needed(mean: float, sd: float, *, level: float = CONFIDENCE) -> int | None:
    """Fewest pairs at which a paired difference with this ``mean`` and standard deviation ``sd``
    would have its interval above 0: a plug-in planning guess (it takes the observed mean and
    spread as the truth), not a power calculation. None when ``mean`` is not above 0 or more than
    ``MAX_SEEDS`` would be needed."""
    if not mean > 0:
        return None
    for n in range(2, MAX_SEEDS + 1):
        if mean - t_quantile(n, level=level) * sd / math.sqrt(n) > 0:
            return n
    return None


def paired_comparison(diff: Sequence[float], *, level: float = CONFIDENCE) -> PairedComparison:
    """Wins, mean, standard error, t interval and sign test of per-seed ``diff`` (baseline -
    chosen). Identical differences give a zero-width interval at their value."""
    n = len(diff)
    if n == 0:
        return PairedComparison(0, 0, None, None, None, None, None, None)
    wins = sum(d > 0 for d in diff)
    sign_p = float(stats.binom.sf(wins - 1, n, 0.5))
    mean = math.fsum(diff) / n
    if n == 1:
        return PairedComparison(1, wins, mean, None, None, None, sign_p, None)
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diff) / (n - 1))
    se = sd / math.sqrt(n)
    half = t_quantile(n, level=level) * se
    needed = seeds_needed(mean, sd, level=level)
    return PairedComparison(n, wins, mean, se, mean - half, mean + half, sign_p, needed)


#: The paired columns of ``compare_target_runs``, in order (``PairedComparison``'s fields).
PAIRED_SCHEMA: dict[str, type[pl.DataType]] = {
    "pairs": pl.Int64,
    "wins": pl.Int64,
    "paired_diff_mean": pl.Float64,
    "paired_diff_se": pl.Float64,
    "paired_diff_lo": pl.Float64,
    "paired_diff_hi": pl.Float64,
    "sign_p": pl.Float64,
    "verdict": pl.String,
    "seeds_needed": pl.Int64,
}


def _paired_columns(ok: pl.DataFrame, labels: list[str]) -> pl.DataFrame:
    """One row per label of ``PAIRED_SCHEMA``: the baseline against the chosen mixture on their
    common seeds; null on the chosen row and on every row when no chosen run finished ok."""
    chosen = ok.filter(pl.col("label") == "chosen").select("seed", pl.col("target").alias("c"))
    rows: list[dict[str, object]] = []
    for label in labels:
        if label == "chosen" or chosen.is_empty():
            rows.append(dict.fromkeys(PAIRED_SCHEMA))
            continue
        pairs = ok.filter(pl.col("label") == label).join(chosen, on="seed").sort("seed")
        r = paired_comparison((pairs["target"] - pairs["c"]).to_list())
        values = (r.pairs, r.wins, r.mean, r.se, r.lo, r.hi, r.sign_p, r.verdict, r.seeds_needed)
        rows.append(dict(zip(PAIRED_SCHEMA, values, strict=True)))
    return pl.DataFrame(rows, schema=PAIRED_SCHEMA, orient="row")


def compare_target_runs(meta: pl.DataFrame) -> pl.DataFrame:
    """Per mixture label, best first: the target over seeds (``mean``, ``std``, ``min``, ``max``,
    ``seeds``, ``margin_vs_chosen`` = mean - chosen mean), unpaired and for display; then, on
    baseline rows, the comparison with the chosen mixture paired by seed on the seeds both ran
    ok (``PairedComparison``): ``pairs``, ``wins`` (seeds where chosen is lower),
    ``paired_diff_mean``, ``paired_diff_se``, the 95% interval ``paired_diff_lo`` to
    ``paired_diff_hi`` (of baseline - chosen), ``sign_p``, ``verdict`` (better, worse,
    inconclusive) and ``seeds_needed``.

    ``beats_all_baselines`` is true on the chosen row when the verdict is "better" against every
    baseline: the interval lies above 0, which takes at least 2 common seeds.
    """
    ok = meta.filter(pl.col("status") == "ok")
    if ok.is_empty():
        raise DataError("no target run finished ok; nothing to compare")
    twice = ok.group_by("label", "seed").len().filter(pl.col("len") > 1)
    if not twice.is_empty():
        raise DataError(
            "more than one ok target run per mixture and seed, cannot pair them: "
            f"{twice.select('label', 'seed').to_dicts()}"
        )
    summary = (
        ok.group_by("label")
        .agg(
            pl.col("target").mean().alias("mean"),
            pl.col("target").std(ddof=1).fill_null(0.0).alias("std"),
            pl.col("target").min().alias("min"),
            pl.col("target").max().alias("max"),
            pl.len().alias("seeds"),
        )
        .sort("mean", "label")
    )
    chosen_mean = summary.filter(pl.col("label") == "chosen")["mean"]
    margin = (
        pl.when(pl.col("label") != "chosen").then(pl.col("mean") - chosen_mean.item())
        if len(chosen_mean)
        else pl.lit(None, dtype=pl.Float64)
    )
    summary = summary.with_columns(margin.alias("margin_vs_chosen"))
    summary = summary.hstack(_paired_columns(ok, summary["label"].to_list()))
    verdicts = summary.filter(pl.col("label") != "chosen")["verdict"].to_list()
    beats = len(chosen_mean) > 0 and bool(verdicts) and all(v == "better" for v in verdicts)
    return summary.with_columns(
        (pl.col("label") == "chosen").and_(pl.lit(beats)).alias("beats_all_baselines")
    )
