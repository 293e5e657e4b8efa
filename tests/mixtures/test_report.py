"""The report's markdown: what ran, what the fit left out, and warnings a reader must see."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mixtures.report import describe_target, render_report, status_counts


def _render(**overrides) -> str:
    args = {
        "title": "demo",
        "target_kind": "domain",
        "target": describe_target("domain", "c", None),
        "train_domains": ["a", "b"],
        "mixtures": {"chosen": {"a": 0.7, "b": 0.3}, "uniform": {"a": 0.5, "b": 0.5}},
        "chosen": {
            "mixture": {"a": 0.7, "b": 0.3},
            "predicted": 3.2,
            "predicted_std": None,
            "surrogate": "gp",
            "best_observed": {"run_id": "r1", "target": 3.3},
        },
        "scale": "proxy",
        "quality": [{"surrogate": "gp", "runs": 18, "folds": 5, "spearman": 0.5}],
        "comparison": [],
    }
    return render_report(**{**args, **overrides})


def test_report_counts_runs_and_says_which_the_fit_left_out(tmp_path: Path) -> None:
    meta = tmp_path / "runs_meta.parquet"
    statuses = ["ok"] * 18 + ["diverged"] * 2 + ["failed"]
    pl.DataFrame({"run_id": [str(i) for i in range(21)], "status": statuses}).write_parquet(meta)
    counts = status_counts(meta)
    assert counts == {"ok": 18, "diverged": 2, "failed": 1}
    text = _render(runs={"proxy runs": counts})
    assert "Proxy runs: 18 ok, 2 diverged, 1 failed." in text
    assert "The 3 diverged or failed run(s) are left out of the surrogate fit" in text
    # the counts come before the chosen mixture
    assert text.index("Proxy runs:") < text.index("## Chosen mixture")
    clean = _render(runs={"proxy runs": {"ok": 12, "diverged": 0, "failed": 0}})
    assert "Proxy runs: 12 ok, 0 diverged, 0 failed." in clean and "left out" not in clean


def test_a_weak_surrogate_warning_is_stated_at_the_top() -> None:
    warning = "the surrogate 'gp' has a cross-validated rank correlation (Spearman) of -0.62"
    chosen = {
        "mixture": {"a": 0.7, "b": 0.3},
        "predicted": 3.2,
        "predicted_std": 0.1,
        "surrogate": "gp",
        "best_observed": {"run_id": "r1", "target": 3.3},
        "warnings": [warning],
    }
    lines = _render(chosen=chosen).split("\n\n")
    assert lines[0] == "# mixopt report: demo"
    assert lines[1] == f"> **Warning:** {warning}"
    assert "Warning" not in _render()


def test_a_target_run_handed_elsewhere_is_said_where() -> None:
    note = "target run handed to deployment target_run/demo as flow run 123"
    text = _render(target_note=note)
    assert "## Target runs\n\n" + note in text
    assert "## Target runs" not in _render()


def _comparison() -> list[dict]:
    from proxies.compare import compare_target_runs

    chosen = [5.30, 5.40, 5.50, 5.35, 5.45]
    rows = [
        {"label": label, "status": "ok", "target": c + d, "seed": s}
        for label, diffs in {
            "chosen": [0.0] * 5,
            "uniform": [0.14, 0.18, 0.12, 0.16, 0.15],
            "natural": [0.30, -0.10, 0.05, 0.20, -0.05],
        }.items()
        for s, (c, d) in enumerate(zip(chosen, diffs, strict=True))
    ]
    return compare_target_runs(pl.DataFrame(rows)).to_dicts()


def test_the_target_runs_verdict_is_stated_paired_by_seed_with_its_interval() -> None:
    text = _render(comparison=_comparison())
    assert (
        "- chosen vs uniform: lower on 5 of 5 seeds, by 0.150 (95% CI 0.122 to 0.178): better"
        in (text)
    )
    assert (
        "- chosen vs natural: lower on 3 of 5 seeds, by 0.080 (95% CI -0.129 to 0.289): "
        "inconclusive (with the same mean and spread, 20 seeds would put the CI above 0)" in text
    )
    assert (
        "Chosen beats every baseline (paired by seed, the 95% CI of each difference above 0): "
        "**False**; inconclusive against natural." in text
    )
    better = [r for r in _comparison() if r["label"] != "natural"]
    better[0] = {**better[0], "beats_all_baselines": True}
    assert "**True**; closest: uniform, by 0.150 (95% CI 0.122 to 0.178)." in _render(
        comparison=better
    )
