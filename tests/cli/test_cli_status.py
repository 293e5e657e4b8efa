"""`mixopt status`: counts by status, planned runs, best run and chosen mixture from files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from cli.main import main
from cli.status import format_status, summarize_experiment
from mixtures.errors import DataError
from proxies.records import RUN_META_SCHEMA


def _record(run_id: str, status: str) -> dict:
    return {"run_id": run_id, "spec": {}, "result": {"status": status, "val_loss": {}}}


def _experiment(root: Path) -> Path:
    exp = root / "exp"
    (exp / "proxy_runs").mkdir(parents=True)
    (exp / "config.yaml").write_text(yaml.safe_dump({"sweep": {"n_runs": 4}}))
    for run_id, status in [("a1", "ok"), ("b2", "ok"), ("c3", "failed"), ("d4", "diverged")]:
        (exp / "proxy_runs" / f"{run_id}.json").write_text(json.dumps(_record(run_id, status)))
    rows = [
        {"run_id": "a1", "label": "mix000", "status": "ok", "target": 3.5},
        {"run_id": "b2", "label": "uniform", "status": "ok", "target": 3.2},
        {"run_id": "c3", "label": "mix001", "status": "failed", "target": None},
    ]
    pl.DataFrame(rows).with_columns(
        *[pl.lit(None, dtype=t).alias(c) for c, t in RUN_META_SCHEMA.items() if c not in rows[0]]
    ).select(list(RUN_META_SCHEMA)).cast(RUN_META_SCHEMA).write_parquet(exp / "runs_meta.parquet")
    return exp


def test_summary_counts_statuses_and_finds_the_best_run(tmp_path) -> None:
    summary = summarize_experiment(_experiment(tmp_path))
    assert summary["planned"] == 6  # 4 sampled + uniform + natural
    assert summary["records"] == 4
    assert summary["status"] == {"ok": 2, "failed": 1, "diverged": 1}
    assert summary["best"] == {"label": "uniform", "run_id": "b2", "target": 3.2}
    text = format_status(summary)
    assert "4 recorded of 6 planned: 2 ok, 1 failed, 1 diverged" in text
    assert "best measured: uniform b2 3.2000" in text


def test_chosen_mixture_is_shown_when_present(tmp_path, capsys) -> None:
    exp = _experiment(tmp_path)
    chosen = {"mixture": {"a": 0.25, "b": 0.75}, "predicted": 3.1, "surrogate": "ridge"}
    (exp / "chosen.json").write_text(json.dumps(chosen))
    assert main(["status", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "chosen mixture: b=0.750, a=0.250" in out
    assert "predicted target: 3.1000 (ridge)" in out
    assert main(["status", str(exp), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"]["ok"] == 2


def test_target_handoff_and_warnings_are_shown(tmp_path) -> None:
    exp = _experiment(tmp_path)
    warning = "the surrogate 'gp' has a cross-validated rank correlation (Spearman) of -0.62"
    chosen = {
        "mixture": {"a": 1.0},
        "predicted": 3.1,
        "surrogate": "gp",
        "warnings": [warning],
    }
    (exp / "chosen.json").write_text(json.dumps(chosen))
    handoff = {"where": "inline", "message": "target run inline: no live server for deployment x"}
    (exp / "target_handoff.json").write_text(json.dumps(handoff))
    text = format_status(summarize_experiment(exp))
    assert f"warning: {warning}" in text
    assert "target run inline: no live server for deployment x" in text


def test_runs_of_an_earlier_config_are_counted_apart(tmp_path) -> None:
    from proxies.config import TrainConfig

    exp = tmp_path / "exp"
    (exp / "proxy_runs").mkdir(parents=True)
    now = TrainConfig(model="nano", lr=0.01).model_dump(mode="json")
    config = {"seed": 0, "proxy": now, "sweep": {"n_runs": 2}}
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    # a record written before final_loss_ratio existed is still one of this config's runs
    older = {k: v for k, v in now.items() if k != "final_loss_ratio"}
    earlier = TrainConfig(model="nano", lr=8.0).model_dump(mode="json")
    for run_id, train, seed in [("a", now, 0), ("b", older, 0), ("c", earlier, 0), ("d", now, 1)]:
        record = {**_record(run_id, "ok"), "spec": {"train": train, "seed": seed}}
        (exp / "proxy_runs" / f"{run_id}.json").write_text(json.dumps(record))
    summary = summarize_experiment(exp)
    assert (summary["records"], summary["other_records"]) == (2, 2)
    text = format_status(summary)
    assert "proxy runs: 2 recorded of 4 planned: 2 ok" in text
    assert "and 2 runs of earlier configs in the run store" in text


def test_not_an_experiment_folder_is_a_clear_error(tmp_path, capsys) -> None:
    with pytest.raises(DataError, match="not an experiment folder"):
        summarize_experiment(tmp_path)
    assert main(["status", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_target_runs_show_the_paired_verdict(tmp_path, capsys) -> None:
    from cli.main import _print_comparison
    from proxies.compare import compare_target_runs

    exp = _experiment(tmp_path)
    rows = [
        {"label": label, "status": "ok", "target": 5.0 + s / 10 + d, "seed": s}
        for label, d in {"chosen": 0.0, "uniform": 0.2}.items()
        for s in range(3)
    ]
    comparison = compare_target_runs(pl.DataFrame(rows))
    comparison.write_parquet(exp / "comparison.parquet")
    text = format_status(summarize_experiment(exp))
    assert "target run uniform    mean 5.3000 std 0.1000 (3 seeds)" in text
    assert "chosen vs uniform: lower on 3 of 3 seeds, by 0.200 (95% CI 0.200 to 0.200): better" in (
        text
    )
    assert "above 0): True; closest: uniform" in text
    _print_comparison(comparison.to_dicts())
    assert "above 0): True; closest: uniform" in capsys.readouterr().out
    # a comparison written before it was paired: the table, and no verdict it cannot back
    comparison.select("label", "mean", "std", "seeds").write_parquet(exp / "comparison.parquet")
    old = format_status(summarize_experiment(exp))
    assert "target run chosen" in old and "chosen vs" not in old and "beats" not in old
