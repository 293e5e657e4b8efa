"""Tests of the long run table: validation, arrays by key, targets, I/O, select/concat/wide."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mixtures.errors import ConfigError, DataError
from mixtures.runtable import FIELDS, RUN_TABLE_SCHEMA, RunTable, domain_map


def _table() -> RunTable:
    # run ids deliberately not sorted, domains not sorted: arrays must come back by key
    return RunTable.from_arrays(
        ["r2", "r1", "r3"],
        ["web", "code"],
        np.array([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]),
        {
            "metric/web-loss": np.array([2.0, 1.0, 3.0]),
            "acc": np.array([0.2, 0.1, 0.3]),
        },
        fidelity={"model_params": np.array([1e6, 1e6, 6e7])},
        cost=np.array([10.0, 20.0, 30.0]),
    )


def _long(rows: list[tuple[str, str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RUN_TABLE_SCHEMA, orient="row")


def test_arrays_follow_sorted_run_ids_and_domains() -> None:
    t = _table()
    assert t.run_ids == ("r1", "r2", "r3")
    assert t.domains == ("code", "web")
    assert t.metrics == ("acc", "metric/web-loss")
    assert t.fidelities == ("model_params",)
    assert len(t) == 3
    np.testing.assert_array_equal(t.weights(), [[0.0, 1.0], [0.75, 0.25], [0.5, 0.5]])
    np.testing.assert_array_equal(t.weights(["web"]), [[1.0], [0.25], [0.5]])
    np.testing.assert_array_equal(t.values("fidelity", "model_params"), [1e6, 1e6, 6e7])
    np.testing.assert_array_equal(t.values("cost", "cost"), [20.0, 10.0, 30.0])


def test_zero_weights_are_stored_explicitly() -> None:
    t = _table()
    zero = t.long.filter(
        (pl.col("run_id") == "r1") & (pl.col("field") == "weight") & (pl.col("key") == "code")
    )
    assert zero.get_column("value").to_list() == [0.0]


def test_row_order_of_the_long_frame_does_not_matter() -> None:
    t = _table()
    shuffled = RunTable(t.long.sample(fraction=1.0, shuffle=True, seed=3))
    np.testing.assert_array_equal(shuffled.weights(), t.weights())
    np.testing.assert_array_equal(shuffled.target("acc"), t.target("acc"))
    assert shuffled.long.equals(t.long)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("metric/web-loss", [1.0, 2.0, 3.0]),
        ("  acc ", [0.1, 0.2, 0.3]),
        ("mean(acc, metric/web-loss)", [0.55, 1.1, 1.65]),
        ("sum( acc ,metric/web-loss )", [1.1, 2.2, 3.3]),
        ("0.5*metric/web-loss + 2*acc", [0.7, 1.4, 2.1]),
        ("metric/web-loss + -1e+1 * acc", [0.0, 0.0, 0.0]),
        ("acc + acc", [0.2, 0.4, 0.6]),
    ],
)
def test_target_grammar(expr: str, expected: list[float]) -> None:
    np.testing.assert_allclose(_table().target(expr), expected, atol=1e-12)


def test_target_exact_name_wins_over_grammar() -> None:
    t = RunTable.from_arrays(["a"], ["x"], np.ones((1, 1)), {"mean(x)": np.array([7.0])})
    np.testing.assert_array_equal(t.target("mean(x)"), [7.0])


def test_target_errors() -> None:
    t = _table()
    with pytest.raises(DataError, match=r"unknown metric 'los' .*available: \['acc', 'metric/web"):
        t.target("los")
    with pytest.raises(DataError, match="unknown metric 'nope'"):
        t.target("mean(acc, nope)")
    with pytest.raises(ConfigError, match="only functions are mean"):
        t.target("max(acc)")
    with pytest.raises(ConfigError, match="cannot parse term '2\\*acc\\*acc'"):
        t.target("2*acc*acc")
    with pytest.raises(ConfigError, match="empty argument"):
        t.target("mean(acc,)")
    with pytest.raises(ConfigError, match="non-empty"):
        t.target("  ")


def test_target_names_a_run_missing_the_metric() -> None:
    rows = [
        ("a", "weight", "x", 1.0),
        ("b", "weight", "x", 1.0),
        ("a", "metric", "loss", 2.0),
    ]
    t = RunTable(_long(rows))
    with pytest.raises(DataError, match="run 'b' has no value for metric 'loss'"):
        t.target("loss")
    assert t.wide().get_column("m:loss").to_list() == [2.0, None]


def test_write_read_roundtrip_is_atomic(tmp_path: Path) -> None:
    t = _table()
    out = t.write(tmp_path / "sub" / "runs.parquet")
    assert out == tmp_path / "sub" / "runs.parquet"
    assert sorted(p.name for p in out.parent.iterdir()) == ["runs.parquet"]  # no temp left
    back = RunTable.read(out)
    assert back == t and back != t.select(["r1"])
    np.testing.assert_array_equal(back.target("acc"), t.target("acc"))


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        RunTable.read(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(DataError, match="junk.parquet is not a readable Parquet"):
        RunTable.read(junk)
    wrong = tmp_path / "wrong.parquet"
    pl.DataFrame({"run_id": ["a"], "domain": ["x"], "weight": [1.0]}).write_parquet(wrong)
    with pytest.raises(DataError, match=r"wrong.parquet: run table schema is \{run_id: String"):
        RunTable.read(wrong)
    bad = tmp_path / "bad.parquet"
    _long([("a", "weight", "x", 0.7)]).write_parquet(bad)
    with pytest.raises(DataError, match="bad.parquet: run 'a': weights sum to 0.7"):
        RunTable.read(bad)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("a", "weights", "x", 1.0)], "run 'a': unknown field 'weights' \\(key 'x'\\)"),
        ([("a", "weight", "x", 1.0), ("a", "metric", "l", float("nan"))], "metric 'l' is nan"),
        ([("a", "weight", "x", 1.0), ("a", "metric", "l", float("inf"))], "metric 'l' is inf"),
        (
            [("a", "weight", "x", 1.0), ("a", "metric", "l", 1.0), ("a", "metric", "l", 2.0)],
            "run 'a': metric 'l' appears 2 times",
        ),
        (
            [("a", "weight", "x", 1.0), ("b", "weight", "y", 1.0)],
            r"run 'a' has no weight for domain\(s\) \['y'\]",
        ),
        (
            [("a", "weight", "x", 1.0), ("b", "metric", "l", 1.0)],
            r"run 'b' has no weight for domain\(s\) \['x'\]",
        ),
        ([("a", "weight", "x", 1.2), ("a", "weight", "y", -0.2)], "weight of 'y' is -0.2 < 0"),
        ([("a", "weight", "x", 0.5), ("a", "weight", "y", 0.494)], "weights sum to 0.994"),
    ],
)
def test_validation_names_run_and_key(rows: list, message: str) -> None:
    with pytest.raises(DataError, match=message):
        RunTable(_long(rows))


def test_weight_sum_tolerance_accepts_regmix_rounding() -> None:
    t = RunTable(_long([("a", "weight", "x", 0.5), ("a", "weight", "y", 0.496)]))
    assert len(t) == 1


def test_schema_is_exact() -> None:
    frame = _long([("a", "weight", "x", 1.0)])
    with pytest.raises(DataError, match="schema"):
        RunTable(frame.with_columns(pl.col("value").cast(pl.Float32)))
    with pytest.raises(DataError, match="schema"):
        RunTable(frame.select(["field", "run_id", "key", "value"]))
    with pytest.raises(DataError, match="schema"):
        RunTable(frame.with_columns(pl.lit(1).alias("seed")))
    with pytest.raises(DataError, match="null key"):
        RunTable(frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("key")))
    assert FIELDS == ("weight", "metric", "fidelity", "cost")


def test_from_arrays_checks_shapes() -> None:
    with pytest.raises(DataError, match=r"weights have shape \(1, 2\), expected \(2, 2\)"):
        RunTable.from_arrays(["a", "b"], ["x", "y"], np.array([[0.5, 0.5]]), {})
    with pytest.raises(DataError, match=r"metric 'l' has shape \(3,\), expected \(2,\)"):
        RunTable.from_arrays(["a", "b"], ["x"], np.ones((2, 1)), {"l": np.ones(3)})
    with pytest.raises(DataError, match="run 'a': weight 'x' appears 2 times"):
        RunTable.from_arrays(["a", "a"], ["x"], np.ones((2, 1)), {})


def test_select_and_concat() -> None:
    t = _table()
    s = t.select(["r3", "r1"])
    assert s.run_ids == ("r1", "r3")
    np.testing.assert_array_equal(s.target("acc"), [0.1, 0.3])
    rest = t.select(["r2"])
    both = s.concat(rest)
    assert both.long.equals(t.long)
    with pytest.raises(DataError, match=r"unknown run id\(s\) \['zz'\]"):
        t.select(["r1", "zz"])
    with pytest.raises(DataError, match=r"1 run id\(s\) in both tables: \['r2'\]"):
        t.concat(rest)
    other = RunTable.from_arrays(["o"], ["web"], np.ones((1, 1)), {})
    with pytest.raises(DataError, match="different domains"):
        t.concat(other)


def test_wide_columns() -> None:
    w = _table().wide()
    assert w.columns == [
        "run_id",
        "w:code",
        "w:web",
        "m:acc",
        "m:metric/web-loss",
        "f:model_params",
        "c:cost",
    ]
    assert w.get_column("run_id").to_list() == ["r1", "r2", "r3"]
    assert w.get_column("w:code").to_list() == [0.0, 0.75, 0.5]
    assert w.get_column("m:metric/web-loss").to_list() == [1.0, 2.0, 3.0]


def test_unknown_domain_in_weights() -> None:
    with pytest.raises(DataError, match=r"unknown domain\(s\) \['math'\]"):
        _table().weights(["web", "math"])


def test_empty_table_is_allowed() -> None:
    t = RunTable(pl.DataFrame(schema=RUN_TABLE_SCHEMA))
    assert len(t) == 0 and t.domains == () and t.weights().shape == (0, 0)


def test_domain_map_renames_merges_and_names_what_it_cannot_map() -> None:
    source = ["code", "s2:a", "s2:b", "web"]
    target = ["existing", "s3:a", "s3:b"]
    M = domain_map(source, target, [("s2:*", "s3:*"), ("*", "existing")])
    W = np.array([[0.2, 0.3, 0.1, 0.4], [0.0, 0.5, 0.5, 0.0]])
    np.testing.assert_allclose(W @ M, [[0.6, 0.3, 0.1], [0.0, 0.5, 0.5]])  # code + web summed
    with pytest.raises(ConfigError, match="no domain rule matches 'code'"):
        domain_map(source, target, [("s2:*", "s3:*")])
    with pytest.raises(ConfigError, match=r"maps 's2:a' to 's4:a', which is not one of"):
        domain_map(source, target, [("s2:*", "s4:*"), ("*", "existing")])
    with pytest.raises(ConfigError, match="at most one"):
        domain_map(source, target, [("*:*", "x")])


@pytest.mark.parametrize(
    ("folder", "held_out"),
    [
        ("mixopt_demo_swarm", "tech_docs"),
        ("mixopt_heldout_swarm", "code_python"),
        ("mixopt_heldout_dialogue_swarm", "dialogue"),
    ],
)
def test_the_committed_swarms_are_valid_pools(folder: str, held_out: str) -> None:
    """data/mixopt_demo_swarm, data/mixopt_heldout_swarm and data/mixopt_heldout_dialogue_swarm
    (the replay_swarms benchmark's pools) read back as their SOURCE.md says."""
    path = Path(__file__).resolve().parents[2] / "data" / folder / "runs.parquet"
    t = RunTable.read(path)
    assert (len(t), len(t.domains)) == (258, 8) and held_out not in t.domains
    losses = [m for m in t.metrics if m.startswith("val_loss/")]
    assert len(losses) == 9 and f"val_loss/{held_out}" in losses
    np.testing.assert_allclose(t.weights().sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(t.target("target"), t.target(f"val_loss/{held_out}"))
    assert len(set(t.run_ids)) == 258
    assert len({tuple(w) for w in t.weights().round(6)}) == 258  # 258 distinct mixtures
