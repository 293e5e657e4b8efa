"""The target runs' verdict: the chosen mixture against each baseline, paired by seed."""

from __future__ import annotations

import polars as pl
import pytest
from scipy import stats

from mixtures.errors import DataError
from proxies.compare import compare_target_runs, paired_comparison, seeds_needed


def _meta(values: dict[str, list[float | None]], seeds: list[int] | None = None) -> pl.DataFrame:
    """Target-run metadata: one ok run per value (None: a failed run) at ``seeds`` (0, 1, ...)."""
    rows = [
        {
            "label": label,
            "status": "failed" if v is None else "ok",
            "target": v,
            "seed": (seeds or list(range(len(vs))))[i],
        }
        for label, vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pl.DataFrame(rows, schema={"label": str, "status": str, "target": float, "seed": int})


def _row(table: pl.DataFrame, label: str) -> dict:
    return table.filter(pl.col("label") == label).row(0, named=True)


def _unpaired_beats(table: pl.DataFrame, label: str) -> bool:
    """The criterion the paired one replaced: mean lower by more than the larger std."""
    chosen, other = _row(table, "chosen"), _row(table, label)
    return other["mean"] - chosen["mean"] > max(other["std"], chosen["std"])


def test_the_cross_machine_example_wins_every_seed_but_three_seeds_cannot_settle_it():
    # Per-seed values with the summary the demo gave on another machine: chosen 5.407 +- 0.060,
    # uniform 5.563 +- 0.173, natural 5.592 +- 0.255; chosen is lower on every seed.
    table = compare_target_runs(
        _meta(
            {
                "chosen": [5.35, 5.40, 5.47],
                "uniform": [5.395, 5.555, 5.74],
                "natural": [5.38, 5.52, 5.875],
            }
        )
    )
    summary = {r["label"]: (round(r["mean"], 3), round(r["std"], 3)) for r in table.to_dicts()}
    assert summary == {
        "chosen": (5.407, 0.060),
        "uniform": (5.563, 0.173),
        "natural": (5.592, 0.255),
    }
    for label in ("uniform", "natural"):
        r = _row(table, label)
        assert not _unpaired_beats(table, label)
        assert (r["pairs"], r["wins"]) == (3, 3)
        assert r["sign_p"] == pytest.approx(0.125)  # 3 of 3 by chance: 1/8
        # std(baseline) <= std(chosen) + std(diff), so these summaries force a spread of the
        # per-seed differences of at least 0.113 (uniform) and 0.195 (natural): too much for
        # 3 pairs, whose 95% t interval (t = 4.30, 2 degrees of freedom) still reaches below 0.
        assert r["paired_diff_lo"] < 0 < r["paired_diff_mean"]
        assert r["verdict"] == "inconclusive"
    assert _row(table, "uniform")["seeds_needed"] == 5
    assert _row(table, "natural")["seeds_needed"] == 7
    assert not table["beats_all_baselines"].any()


def test_paired_wins_where_the_unpaired_criterion_fails():
    # A large seed effect shared by every mixture hides a consistent gap from the unpaired means.
    seed_effect = [-0.2, 0.0, 0.2, -0.1, 0.1]
    chosen = [5.40 + e for e in seed_effect]
    uniform = [c + d for c, d in zip(chosen, [0.14, 0.18, 0.12, 0.16, 0.15], strict=True)]
    natural = [c + d for c, d in zip(chosen, [0.12, 0.08, 0.14, 0.10, 0.11], strict=True)]
    table = compare_target_runs(_meta({"chosen": chosen, "uniform": uniform, "natural": natural}))
    assert table["label"].to_list() == ["chosen", "natural", "uniform"]  # best first
    for label in ("uniform", "natural"):
        r = _row(table, label)
        assert not _unpaired_beats(table, label)
        assert (r["pairs"], r["wins"], r["verdict"]) == (5, 5, "better")
        assert r["paired_diff_lo"] > 0
        assert r["sign_p"] == pytest.approx(1 / 32)
    assert _row(table, "uniform")["paired_diff_mean"] == pytest.approx(0.15)
    assert _row(table, "chosen")["beats_all_baselines"]
    assert not _row(table, "uniform")["beats_all_baselines"]
    assert _row(table, "chosen")["verdict"] is None  # no paired stats on the chosen row


def test_a_mixed_result_is_inconclusive_and_a_consistent_loss_is_worse():
    chosen = [1.0, 1.0, 1.0, 1.0]
    table = compare_target_runs(
        _meta(
            {
                "chosen": chosen,
                "uniform": [1.2, 0.9, 1.15, 0.95],  # won 2, lost 2
                "natural": [0.8, 0.85, 0.9, 0.82],  # chosen higher on every seed
            }
        )
    )
    mixed, worse = _row(table, "uniform"), _row(table, "natural")
    assert (mixed["wins"], mixed["verdict"]) == (2, "inconclusive")
    assert mixed["paired_diff_lo"] < 0 < mixed["paired_diff_hi"]
    assert mixed["sign_p"] == pytest.approx(11 / 16)  # P[>= 2 of 4]
    assert (worse["wins"], worse["verdict"]) == (0, "worse")
    assert worse["paired_diff_hi"] < 0
    assert worse["sign_p"] == pytest.approx(1.0)
    assert worse["seeds_needed"] is None
    assert not table["beats_all_baselines"].any()
    # better against one baseline is not enough
    one_better = compare_target_runs(
        _meta({"chosen": chosen, "uniform": [1.5, 1.6, 1.55, 1.5], "natural": [1.2, 0.9, 1.1, 1.0]})
    )
    assert _row(one_better, "uniform")["verdict"] == "better"
    assert _row(one_better, "natural")["verdict"] == "inconclusive"  # diffs 0.2, -0.1, 0.1, 0
    assert not one_better["beats_all_baselines"].any()


def test_one_seed_is_never_a_win():
    table = compare_target_runs(_meta({"chosen": [1.0], "uniform": [3.0]}))
    r = _row(table, "uniform")
    assert (r["pairs"], r["wins"]) == (1, 1)
    assert r["paired_diff_mean"] == pytest.approx(2.0)
    assert r["paired_diff_lo"] is None and r["paired_diff_hi"] is None
    assert r["sign_p"] == pytest.approx(0.5)
    assert r["verdict"] == "inconclusive"
    assert not table["beats_all_baselines"].any()


def test_pairs_only_on_the_seeds_both_ran_ok():
    # chosen ran ok on seeds 0, 1, 3 (2 failed); uniform on 0, 1, 2 and 4 (3 failed)
    table = compare_target_runs(
        _meta(
            {"chosen": [1.0, 1.1, None, 1.3, None], "uniform": [1.5, 1.7, 1.0, None, 9.0]},
            seeds=[0, 1, 2, 3, 4],
        )
    )
    chosen, uniform = _row(table, "chosen"), _row(table, "uniform")
    assert (chosen["seeds"], uniform["seeds"]) == (3, 4)
    assert uniform["pairs"] == 2  # seeds 0 and 1
    assert uniform["paired_diff_mean"] == pytest.approx(0.55)  # (0.5 + 0.6) / 2
    assert uniform["margin_vs_chosen"] == pytest.approx(
        (1.5 + 1.7 + 1.0 + 9.0) / 4 - (1.0 + 1.1 + 1.3) / 3
    )
    # a baseline with no seed in common has nothing to pair
    apart = compare_target_runs(_meta({"chosen": [1.0, None], "uniform": [None, 2.0]}))
    assert (_row(apart, "uniform")["pairs"], _row(apart, "uniform")["verdict"]) == (
        0,
        "inconclusive",
    )


def test_t_interval_matches_scipy_and_the_hand_computed_one():
    # diffs 0.1, 0.2, 0.3: mean 0.2, sd 0.1, se 0.1/sqrt(3); t(0.975, 2) = 4.302653
    r = paired_comparison([0.1, 0.2, 0.3])
    assert r.mean == pytest.approx(0.2)
    assert r.se == pytest.approx(0.057735, abs=1e-6)
    assert (r.lo, r.hi) == (
        pytest.approx(0.2 - 4.302653 * 0.057735, abs=1e-5),
        pytest.approx(0.2 + 4.302653 * 0.057735, abs=1e-5),
    )
    assert r.verdict == "inconclusive"
    chosen = [5.330, 5.373, 5.324, 5.351, 5.338]
    baseline = [5.432, 5.583, 5.559, 5.401, 5.480]
    ci = stats.ttest_rel(baseline, chosen).confidence_interval(0.95)
    r = paired_comparison([b - c for b, c in zip(baseline, chosen, strict=True)])
    assert (r.lo, r.hi) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert r.verdict == "better"


def test_sign_test_counts_ties_as_seeds_not_won():
    assert paired_comparison([0.1, 0.2, -0.1, 0.3, 0.2]).sign_p == pytest.approx(6 / 32)
    tied = paired_comparison([0.1, 0.0, 0.2])
    assert tied.wins == 2 and tied.sign_p == pytest.approx(0.5)  # P[>= 2 of 3]
    # identical differences: a zero-width interval at their value
    same = paired_comparison([0.1, 0.1, 0.1])
    assert (same.lo, same.hi, same.verdict) == (pytest.approx(0.1), pytest.approx(0.1), "better")


def test_seeds_needed_is_where_the_same_mean_and_spread_clear_zero():
    # half-widths t(0.975, n - 1) * 0.1127 / sqrt(n): n = 4: 3.182 * 0.0564 = 0.179 > 0.156;
    # n = 5: 2.776 * 0.0504 = 0.140 < 0.156
    assert seeds_needed(0.156, 0.1127) == 5
    assert seeds_needed(0.2, 0.0) == 2
    assert seeds_needed(0.0, 0.1) is None and seeds_needed(-0.1, 0.1) is None
    assert seeds_needed(0.001, 1.0) is None  # beyond MAX_SEEDS


def test_nothing_to_compare_and_runs_that_cannot_be_paired_are_errors():
    with pytest.raises(DataError, match="no target run"):
        compare_target_runs(_meta({"chosen": [None]}))
    twice = _meta({"chosen": [1.0, 1.1], "uniform": [2.0, 2.1]}, seeds=[0, 0])
    with pytest.raises(DataError, match="more than one ok target run per mixture and seed"):
        compare_target_runs(twice)
