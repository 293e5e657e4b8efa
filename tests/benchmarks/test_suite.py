"""The benchmark suite: each case's smoke run writes a result in the one format with real
figures, ``render`` turns result files into BENCHMARKS.md's tables, and the committed results
are the tables the committed BENCHMARKS.md shows."""

from __future__ import annotations

import json
import math
import shlex
import shutil
import sys
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is not installed: it runs from the repository root
    sys.path.insert(0, str(ROOT))

from benchmarks.cases import all_cases  # noqa: E402
from benchmarks.cli import main, smoke  # noqa: E402
from benchmarks.render import render  # noqa: E402
from benchmarks.suite import command_line, parse_sets, resolve_params  # noqa: E402
from mixtures.errors import ConfigError  # noqa: E402

#: Cases whose smoke starts a Prefect server, runs a flow or starts a process per variant (tens
#: of seconds); every other case's smoke takes seconds and runs in the fast loop.
SLOW = ["prefect_overhead", "demo", "train_memory", "prepare_throughput", "prepare_scale"]
FAST = [name for name in all_cases() if name not in SLOW]


@pytest.fixture(scope="module")
def fast(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    smoke(out, FAST)
    return out


def load(out: Path, name: str) -> dict:
    # strict JSON: NaN or infinity would fail here
    return json.loads((out / f"{name}.json").read_text(), parse_constant=_reject)


def _reject(token: str) -> None:
    raise ValueError(f"non-standard JSON constant {token}")


def check_format(result: dict, name: str) -> None:
    assert result["case"] == name
    assert f"python -m benchmarks run {name}" in result["command"]
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu"]
    datetime.fromisoformat(result["date"])
    resolve_params(all_cases()[name], result["params"])  # valid parameters of this case
    assert result["rows"]


def block(doc: str, name: str) -> str:
    return doc.split(f"<!-- results: {name} -->")[1].split("<!-- /results -->")[0]


def test_cases_are_the_documented_ones():
    assert set(SLOW) <= set(all_cases())
    doc = (ROOT / "BENCHMARKS.md").read_text()
    assert all(f"<!-- results: {name} -->" in doc for name in all_cases())


@pytest.mark.parametrize("name", FAST)
def test_smoke_result_format(fast, name):
    check_format(load(fast, name), name)


def test_trainer_throughput_figures(fast):
    (row,) = load(fast, "trainer_throughput")["rows"]
    assert row["plain_tokens_per_s"] > 0 and row["trainer_tokens_per_s"] > 0
    assert 0.1 < row["ratio"] < 10 and len(row["ratios"]) == 1


def test_pack_throughput_figures(fast):
    rows = load(fast, "pack_throughput")["rows"]
    assert [(r["preset"], r["precision"], r["pack"]) for r in rows] == [
        ("nano", "fp32", 1),
        ("nano", "fp32", 2),
    ]
    for r in rows:
        assert r["solo_tokens_per_s"] > 0 and r["pack_tokens_per_s"] > 0
        assert r["speedup"] == pytest.approx(r["pack_tokens_per_s"] / r["solo_tokens_per_s"])
        assert 0 < r["peak_share"] < 10 and r["peak_gflops"] > 0


def test_pack_agreement_figures(fast):
    (row,) = load(fast, "pack_agreement")["rows"]
    assert row["variant"] == "solo" and row["runs"] == 3
    # a short run does not amplify float rounding: packed and solo losses agree closely
    assert row["max_abs_diff"] < 1e-3 and row["loss_range"] > 0


def test_merge_proxy_figures(fast):
    rows = load(fast, "merge_proxy")["rows"]
    assert [r["trunk_share"] for r in rows] == [0.0, 0.5]
    for r in rows:
        assert r["runs"] == 4 and all(-1 <= v <= 1 for v in r["spearman"].values())
    # 4 experts of the smoke corpus: no trunk costs 4 runs, half the steps shared 1 + 4 x 0.5
    assert [r["cost_runs"] for r in rows] == [pytest.approx(4.0), pytest.approx(2.5)]


def test_merge_pool_figures(fast):
    rows = load(fast, "merge_pool")["rows"]
    merged, fitted, *replays = rows
    assert merged["what"] == "merged, trunk 0.50" and merged["cost_runs"] == pytest.approx(2.5)
    assert fitted["cost_runs"] == 2 and set(fitted["by_surrogate"]) == {"ridge"}
    for r in (merged, fitted):
        assert set(r["spearman"]) == set(merged["spearman"])
        assert all(-1 <= v <= 1 for v in r["spearman"].values())
    assert [r["merge_cost_runs"] for r in replays] == [0.0, pytest.approx(2.5)]
    for r in replays:
        assert r["pool"] == 4 and 1 <= r["runs_to_top_median"] <= 5  # budget 4, a miss is 5
        assert r["total_runs"] == pytest.approx(r["runs_to_top_median"] + r["merge_cost_runs"])


def test_merge_finetune_figures(fast):
    merged, fitted, *replays = load(fast, "merge_finetune")["rows"]
    # 4 experts branched from the base, no trunk: 4 runs of continued training
    assert merged["what"] == "merged, trunk 0.00" and merged["cost_runs"] == pytest.approx(4.0)
    assert all(-1 <= v <= 1 for v in merged["spearman"].values())
    assert fitted["cost_runs"] == 2
    assert [r["pool"] for r in replays] == [6, 6]
    assert replays[1]["total_runs"] == pytest.approx(replays[1]["runs_to_top_median"] + 4.0)


def test_surrogate_fit_figures(fast):
    rows = load(fast, "surrogate_fit")["rows"]
    assert {(r["surrogate"], r["size"]) for r in rows} == {
        (s, n) for s in ("ridge", "lightgbm") for n in (16, 32)
    }
    for r in rows:
        assert all(-1 <= r[k] <= 1 for k in ("spearman_1M", "spearman_1B"))
        assert r["fits"] == 2
    ridge32 = next(r for r in rows if r["surrogate"] == "ridge" and r["size"] == 32)
    assert ridge32["spearman_1M"] > 0.7  # RegMix's losses are close to linear in the weights


def test_surrogate_fit_ci_brackets_the_point(fast):
    rows = load(fast, "surrogate_fit_ci")["rows"]
    assert [(r["test"], r["runs"]) for r in rows] == [("1M", 256), ("1B", 64)]
    for r in rows:
        assert r["ci_low"] <= r["spearman"] <= r["ci_high"]


@pytest.mark.parametrize("name", ["replay", "replay_swarms"])
def test_replay_figures(fast, name):
    result = load(fast, name)
    for r in result["rows"]:
        assert len(r["per_repeat"]) == r["repeats"] == 1
        assert 1 <= r["median"] <= r["budget"] + 1
        assert r["random_mean"] == pytest.approx((r["runs"] + 1) / (r["top"] + 1))
        if r["saving"] is not None:
            assert r["saving"] == pytest.approx(r["random_mean"] / r["median"])
    assert {r["method"] for r in result["rows"]} == set(result["params"]["methods"])


def test_smoke_renders_every_fast_table(fast):
    doc = (fast / "BENCHMARKS.md").read_text()
    for name in FAST:
        assert "\n|---" in block(doc, name), name  # a markdown table
        assert load(fast, name)["command"] in block(doc, name)
    committed = (ROOT / "BENCHMARKS.md").read_text()
    for name in SLOW:  # not run here: their blocks keep the committed tables
        assert block(doc, name) == block(committed, name)


def test_committed_results_are_the_documented_tables(tmp_path):
    """benchmarks/results/ holds one file per case, in the format, and BENCHMARKS.md shows
    exactly what render makes of them."""
    results = ROOT / "benchmarks" / "results"
    assert sorted(p.stem for p in results.glob("*")) == sorted(all_cases())
    for name in all_cases():
        check_format(load(results, name), name)
    copy = tmp_path / "BENCHMARKS.md"
    shutil.copyfile(ROOT / "BENCHMARKS.md", copy)
    assert sorted(render(copy, results, all_cases())) == sorted(all_cases())
    assert copy.read_text() == (ROOT / "BENCHMARKS.md").read_text()


def test_render_names_a_missing_result(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# x\n<!-- results: replay -->\nold\n<!-- /results -->\n")
    with pytest.raises(ConfigError, match="no result file"):
        render(doc, tmp_path, all_cases())
    doc.write_text("<!-- results: nope -->\n<!-- /results -->\n")
    with pytest.raises(ConfigError, match="unknown case 'nope'"):
        render(doc, tmp_path, all_cases())


def test_command_line_reproduces_the_params():
    case = all_cases()["replay"]
    overrides = {"pools": ["demo_swarm"], "targets": None, "repeats": 3}
    args = shlex.split(command_line(case, overrides))
    assert args[:4] == ["python", "-m", "benchmarks", "run"] and args[4] == "replay"
    assert parse_sets(args[6::2]) == overrides and set(args[5::2]) == {"--set"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nope"], "unknown case 'nope'"),
        (["run", "replay", "--set", "repeat=3"], "repeat: Extra inputs are not permitted"),
        (["run", "replay", "--set", "methods=[annealing]"], "methods.0"),
        (["run", "replay", "--set", "repeats"], "--set takes key=value"),
    ],
)
def test_bad_input_exits_2_and_says_why(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_prefect_overhead_smoke(tmp_path):
    smoke(tmp_path, ["prefect_overhead"])
    result = load(tmp_path, "prefect_overhead")
    check_format(result, "prefect_overhead")
    (row,) = result["rows"]
    assert row["runner"] == "thread" and row["workers"] == 1
    assert math.isfinite(row["per_task_seconds"]) and abs(row["per_task_seconds"]) < 5
    assert 0 < row["engine_seconds"]["1"] < 120


@pytest.mark.slow
def test_demo_smoke_runs_and_records_the_flow(tmp_path):
    smoke(tmp_path, ["demo"])
    result = load(tmp_path, "demo")
    check_format(result, "demo")
    phases = {r["phase"]: r["seconds"] for r in result["rows"] if r["kind"] == "phase"}
    assert all(s >= 0 for s in phases.values())
    assert phases["command"] >= phases["flow in all"] > phases["proxy sweep"] > 0
    mixtures = {r["mixture"]: r for r in result["rows"] if r["kind"] == "mixture"}
    assert set(mixtures) == {"chosen", "uniform", "natural"}
    for r in mixtures.values():
        assert len(r["per_seed"]) == 2 and math.isfinite(r["mean"])
        assert r["mean"] == pytest.approx(sum(r["per_seed"]) / 2)
    assert sum(mixtures["chosen"]["weights"].values()) == pytest.approx(1, abs=1e-3)


@pytest.mark.slow
def test_train_memory_smoke(tmp_path):
    smoke(tmp_path, ["train_memory"])
    result = load(tmp_path, "train_memory")
    check_format(result, "train_memory")
    rows = {r["variant"]: r for r in result["rows"]}
    assert set(rows) == {"plain", "chunked", "chunked_micro4"}
    assert all(r["peak_rss_mb"] > 0 and r["step_seconds"] > 0 for r in rows.values())
    # one batch, one initialisation: every way of taking the loss gives the same value
    assert rows["chunked"]["loss"] == pytest.approx(rows["plain"]["loss"], abs=1e-4)
    assert rows["chunked_micro4"]["loss"] == pytest.approx(rows["plain"]["loss"], abs=1e-4)


def test_demo_outcome_recomputes_the_paired_verdict(tmp_path):
    import polars as pl

    from benchmarks.demo import outcome_rows, tables
    from configs.experiment import ExperimentDir

    exp = ExperimentDir(tmp_path)
    exp.root.mkdir(exist_ok=True)
    runs = {
        "chosen": [5.33, 5.37, 5.32],
        "uniform": [5.45, 5.53, 5.50],
        "natural": [5.44, 5.87, 5.48],
    }
    rows = [
        {"label": label, "status": "ok", "target": v, "seed": s}
        for label, values in runs.items()
        for s, v in enumerate(values)
    ]
    rows.append({"label": "natural", "status": "failed", "target": None, "seed": 3})
    pl.DataFrame(rows).write_parquet(exp.target_meta)
    exp.chosen.write_text(json.dumps({"mixture": {"a": 0.6, "b": 0.4}}))
    out = {r["mixture"]: r for r in outcome_rows(exp)}
    assert out["uniform"]["verdict"] == "better" and out["uniform"]["wins"] == 3
    assert out["natural"]["verdict"] == "inconclusive" and out["natural"]["pairs"] == 3
    assert out["natural"]["per_seed"] == [5.44, 5.87, 5.48]
    assert not out["chosen"]["beats_all_baselines"] and "verdict" not in out["chosen"]
    _, (header, cells) = tables(list(out.values()))
    assert header[-1] == "chosen against it, paired by seed"
    by_name = {c[0]: c[-1] for c in cells}
    assert by_name["chosen"] == "not shown to beat every baseline"
    assert by_name["uniform"] == "lower on 3 of 3 seeds, by 0.153 (95% CI 0.077 to 0.229): better"
