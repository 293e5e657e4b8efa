"""Tests of the RegMix, Olmix and wide CSV importers: real RegMix data and malformed files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mixtures.errors import ConfigError, DataError
from mixtures.importers import import_olmix, import_regmix, import_wide

REGMIX = Path(__file__).resolve().parents[2] / "data" / "regmix"
PILE_CC = "metric/the_pile_pile_cc_val_loss"

MIX_HEADER = "index,train_the_pile_arxiv,train_the_pile_github,train_the_pile_pile_cc"
RES_HEADER = "index,metric/the_pile_arxiv_val_loss,metric/the_pile_pile_cc_val_loss"


def _write(path: Path, lines: list[str], *, newline_at_end: bool = True) -> Path:
    path.write_text("\n".join(lines) + ("\n" if newline_at_end else ""))
    return path


def _regmix_pair(tmp_path: Path, mix_rows: list[str], res_rows: list[str]) -> tuple[Path, Path]:
    mix = _write(tmp_path / "train_mixture_1m.csv", [MIX_HEADER, *mix_rows])
    res = _write(tmp_path / "train_pile_loss_1m.csv", [RES_HEADER, *res_rows])
    return mix, res


GOOD_MIX = ["1,0.2,0.3,0.5", "2,0.0,0.0,1.0", "3,0.333,0.333,0.333"]
GOOD_RES = ["3,4.0,5.0", "1,2.0,3.0", "2,6.0,7.0"]  # other order: the join must use index


# ---------------------------------------------------------------------------- RegMix, real files
def test_regmix_train_files_import() -> None:
    rep = import_regmix(REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv")
    t = rep.table
    assert (len(t), len(t.domains), len(t.metrics)) == (512, 17, 13)
    assert rep.rows_read == 512 and rep.dropped == {}
    assert "pile_cc" in t.domains and PILE_CC in t.metrics
    np.testing.assert_array_equal(t.values("fidelity", "model_params"), 1e6)
    # one run checked against the raw CSV lines, found by index
    with (REGMIX / "train_mixture_1m.csv").open() as fh:
        mix = {r["index"]: r for r in csv.DictReader(fh)}
    with (REGMIX / "train_pile_loss_1m.csv").open() as fh:
        res = {r["index"]: r for r in csv.DictReader(fh)}
    i = t.run_ids.index("train_mixture_1m:300")
    raw = np.array([float(mix["300"][f"train_the_pile_{d}"]) for d in t.domains])
    np.testing.assert_allclose(t.weights()[i], raw / raw.sum())
    assert abs(raw.sum() - 1) <= 0.004
    assert t.target(PILE_CC)[i] == float(res["300"][PILE_CC])


def test_regmix_1b_files_without_trailing_newline_import() -> None:
    assert not (REGMIX / "test_pile_loss_1B.csv").read_bytes().endswith(b"\n")
    rep = import_regmix(REGMIX / "test_mixture_1B.csv", REGMIX / "test_pile_loss_1B.csv")
    assert len(rep.table) == 64 and rep.rows_read == 64
    assert rep.table.run_ids[0] == "test_mixture_1B:0"
    np.testing.assert_array_equal(rep.table.values("fidelity", "model_params"), 1e9)


def test_regmix_tables_of_two_sizes_concat() -> None:
    small = import_regmix(REGMIX / "test_mixture_1m.csv", REGMIX / "test_pile_loss_1m.csv")
    big = import_regmix(REGMIX / "test_mixture_60m.csv", REGMIX / "test_pile_loss_60m.csv")
    both = small.table.concat(big.table)
    assert len(both) == 512
    assert sorted(set(both.values("fidelity", "model_params").tolist())) == [1e6, 6e7]


# ---------------------------------------------------------------------------- RegMix, small files
def test_regmix_join_is_by_index_and_weights_are_normalized(tmp_path: Path) -> None:
    rep = import_regmix(*_regmix_pair(tmp_path, GOOD_MIX, GOOD_RES))
    t = rep.table
    assert t.run_ids == ("train_mixture_1m:1", "train_mixture_1m:2", "train_mixture_1m:3")
    assert t.domains == ("arxiv", "github", "pile_cc")
    np.testing.assert_array_equal(t.target(PILE_CC), [3.0, 7.0, 5.0])
    np.testing.assert_allclose(t.weights()[2], [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(t.weights().sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    ("mix_rows", "res_rows", "message"),
    [
        (
            ["1,0.2,0.3,0.5", "2,0.2,0.3,0.4"],
            ["1,1,1", "2,1,1"],
            r"train_mixture_1m.csv: row 3, column 'train_the_pile_arxiv..train_the_pile_pile_cc':"
            r" weights sum to 0.9, expected 1 within 0.005",
        ),
        (
            ["1,0.2,0.3,0.5", "2,nan,0.5,0.5"],
            ["1,1,1", "2,1,1"],
            r"train_mixture_1m.csv: row 3, column 'train_the_pile_arxiv': 'nan', expected a finite",
        ),
        (
            ["1,0.2,0.3,0.5", "2,0.5,,0.5"],
            ["1,1,1", "2,1,1"],
            r"train_mixture_1m.csv: row 3, column 'train_the_pile_github': empty cell",
        ),
        (
            ["1,0.2,0.3,0.5", "2,0.5,-0.1,0.6"],
            ["1,1,1", "2,1,1"],
            r"row 3, column 'train_the_pile_github': weight -0.1 < 0",
        ),
        (
            ["1,0.2,0.3,0.5"],
            ["1,1,abc"],
            r"train_pile_loss_1m.csv: row 2, column 'metric/the_pile_pile_cc_val_loss': 'abc' "
            "is not a number",
        ),
        (
            ["1,0.2,0.3,0.5", "2,0,0,1", "1,0,0,1"],
            ["1,1,1", "2,1,1"],
            r"train_mixture_1m.csv: row 4, column 'index': duplicate id '1' \(first on row 2\)",
        ),
        (
            ["1,0.2,0.3,0.5", "2,0,0,1"],
            ["1,1,1"],
            r"train_mixture_1m.csv: row 3, column 'index': index '2' has no row in "
            r"train_pile_loss_1m.csv",
        ),
        (
            ["1,0.2,0.3,0.5"],
            ["1,1,1", "7,1,1"],
            r"train_pile_loss_1m.csv: row 3, column 'index': index '7' has no row in "
            r"train_mixture_1m.csv",
        ),
        (
            ["1,0.2,0.3,0.5", "2,0,1"],
            ["1,1,1", "2,1,1"],
            r"row 3, column '\*': 3 cells, expected 4",
        ),
    ],
)
def test_regmix_malformed_rows_name_file_row_and_column(
    tmp_path: Path, mix_rows: list[str], res_rows: list[str], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        import_regmix(*_regmix_pair(tmp_path, mix_rows, res_rows))


def test_regmix_drop_invalid_counts_each_run_once(tmp_path: Path) -> None:
    mix_rows = [
        "1,0.2,0.3,0.5",  # ok
        "2,0.2,0.3,0.4",  # bad_sum
        "3,nan,0.5,0.5",  # non_finite
        "4,0.5,,0.5",  # empty_cell
        "5,0,0,1",  # duplicate_id (both rows)
        "5,0,1,0",
        "6,1,0,0",  # no_results
        "7,0.5,0.5,0",  # its result row is bad: not_a_number
    ]
    res_rows = ["1,1,1", "2,1,1", "3,1,1", "4,1,1", "5,1,1", "7,x,1", "8,1,1"]  # 8: no_mixture
    rep = import_regmix(*_regmix_pair(tmp_path, mix_rows, res_rows), drop_invalid=True)
    assert rep.table.run_ids == ("train_mixture_1m:1",)
    assert rep.rows_read == 8
    assert rep.dropped == {
        "bad_sum": 1,
        "duplicate_id": 2,
        "empty_cell": 1,
        "no_mixture": 1,
        "no_results": 1,
        "non_finite": 1,
        "not_a_number": 1,
    }
    assert len(rep.table) == rep.rows_read - (sum(rep.dropped.values()) - 1)


def test_regmix_tolerance(tmp_path: Path) -> None:
    pair = _regmix_pair(tmp_path, ["1,0.2,0.3,0.49"], ["1,1,1"])
    with pytest.raises(DataError, match="weights sum to 0.99"):
        import_regmix(*pair)
    rep = import_regmix(*pair, tolerance=0.02)
    np.testing.assert_allclose(rep.table.weights()[0], np.array([0.2, 0.3, 0.49]) / 0.99)
    with pytest.raises(ConfigError, match="tolerance"):
        import_regmix(*pair, tolerance=-1.0)


def test_regmix_missing_and_unknown_columns_fail_even_when_dropping(tmp_path: Path) -> None:
    mix = _write(tmp_path / "m.csv", ["idx,train_the_pile_arxiv", "1,1.0"])
    res = _write(tmp_path / "r.csv", [RES_HEADER, "1,1,1"])
    with pytest.raises(DataError, match=r"m.csv: missing column\(s\) \['index'\]"):
        import_regmix(mix, res, drop_invalid=True)
    mix = _write(tmp_path / "m.csv", ["index,train_the_pile_arxiv,weight_x", "1,1.0,0"])
    with pytest.raises(DataError, match=r"m.csv: unknown column\(s\) \['weight_x'\]"):
        import_regmix(mix, res, drop_invalid=True)
    mix = _write(tmp_path / "m.csv", ["index,train_the_pile_arxiv", "1,1.0"])
    res = _write(tmp_path / "r.csv", ["index,loss", "1,1"])
    with pytest.raises(DataError, match=r"r.csv: unknown column\(s\) \['loss'\]"):
        import_regmix(mix, res)
    with pytest.raises(DataError, match="does not exist"):
        import_regmix(tmp_path / "nope.csv", res)
    empty = _write(tmp_path / "e.csv", [])
    with pytest.raises(DataError, match="e.csv is empty"):
        import_regmix(empty, res)


def test_all_rows_dropped_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no valid runs"):
        import_regmix(*_regmix_pair(tmp_path, ["1,0.5,0.5,0.5"], ["1,1,1"]), drop_invalid=True)


# ---------------------------------------------------------------------------- Olmix
OLMIX_RATIOS = [
    ",run,name,index,arxiv,dclm:health,dclm:software",
    "0,19g3guks,swarm-30m-0000,0,0.0,0.30000000000000004,0.7",
    "1,d4nbvsr7,swarm-30m-0001,1,0.25,0.25,0.5",
    "2,ube633ci,swarm-30m-0002,2,1.0,0.0,0.0",
]
OLMIX_METRICS = [
    ",run,name,index,arc_easy:rc::olmes,mmlu_stem:rc::olmes,notes",
    "0,ube633ci,swarm-30m-0002,2,1.5,2.5,",
    "1,19g3guks,swarm-30m-0000,0,1.1,2.1,ok",
    "2,d4nbvsr7,swarm-30m-0001,1,1.3,2.3,",
]


def test_olmix_import_joins_on_run(tmp_path: Path) -> None:
    rat = _write(tmp_path / "swarm_ratios.csv", OLMIX_RATIOS)
    met = _write(tmp_path / "swarm_metrics.csv", OLMIX_METRICS)
    rep = import_olmix(rat, met)
    t = rep.table
    assert t.run_ids == ("swarm:19g3guks", "swarm:d4nbvsr7", "swarm:ube633ci")
    assert t.domains == ("arxiv", "dclm:health", "dclm:software")
    assert t.metrics == ("arc_easy:rc::olmes", "mmlu_stem:rc::olmes")
    assert rep.skipped_columns == ("notes",)
    np.testing.assert_array_equal(t.target("arc_easy:rc::olmes"), [1.1, 1.3, 1.5])
    np.testing.assert_allclose(t.weights(["arxiv"])[:, 0], [0.0, 0.25, 1.0])


def test_olmix_errors_name_row_and_column(tmp_path: Path) -> None:
    rat = _write(tmp_path / "s_ratios.csv", [*OLMIX_RATIOS[:2], "1,d4nbvsr7,n,1,0.5,0.25,0.5"])
    met = _write(tmp_path / "s_metrics.csv", OLMIX_METRICS)
    with pytest.raises(DataError, match=r"s_ratios.csv: row 3, column 'arxiv..dclm:software'"):
        import_olmix(rat, met)
    rep = import_olmix(rat, met, drop_invalid=True)
    assert rep.dropped == {"bad_sum": 1, "no_mixture": 1}
    assert rep.table.run_ids == ("s:19g3guks",)
    no_run = _write(tmp_path / "x_metrics.csv", ["name,loss", "a,1"])
    with pytest.raises(DataError, match=r"x_metrics.csv: missing column\(s\) \['run'\]"):
        import_olmix(rat, no_run)


# ---------------------------------------------------------------------------- wide
WIDE = [
    "run,ratio_web,ratio_code,loss,acc,params,gpu_hours,label",
    "a,0.5,0.5,2.0,0.1,1e6,3,x",
    "b,1.0,0.0,2.5,0.2,6e7,9,y",
]


def test_wide_by_prefix_with_fidelity_cost_and_id(tmp_path: Path) -> None:
    path = _write(tmp_path / "runs.csv", WIDE)
    rep = import_wide(
        path, weights_prefix="ratio_", fidelity=["params"], cost="gpu_hours", id_column="run"
    )
    t = rep.table
    assert t.run_ids == ("a", "b")
    assert t.domains == ("code", "web") and t.metrics == ("acc", "loss")
    assert rep.skipped_columns == ("label",)
    np.testing.assert_array_equal(t.values("fidelity", "params"), [1e6, 6e7])
    np.testing.assert_array_equal(t.values("cost", "cost"), [3.0, 9.0])
    np.testing.assert_array_equal(t.target("mean(loss, acc)"), [1.05, 1.35])


def test_wide_by_list_with_metric_list_and_row_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "runs.csv", WIDE)
    rep = import_wide(path, weights=["ratio_web", "ratio_code"], metrics=["loss"])
    assert rep.table.run_ids == ("runs:2", "runs:3")
    assert rep.table.domains == ("ratio_code", "ratio_web")
    assert rep.table.metrics == ("loss",) and rep.table.fidelities == ()


def test_wide_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "runs.csv", WIDE)
    with pytest.raises(ConfigError, match="exactly one of weights"):
        import_wide(path)
    with pytest.raises(ConfigError, match="exactly one of weights"):
        import_wide(path, weights=["ratio_web"], weights_prefix="ratio_")
    with pytest.raises(DataError, match=r"runs.csv: missing column\(s\) \['steps'\]"):
        import_wide(path, weights_prefix="ratio_", fidelity=["steps"], drop_invalid=True)
    with pytest.raises(DataError, match="no column starts with 'w_'"):
        import_wide(path, weights_prefix="w_")
    with pytest.raises(ConfigError, match="both metrics and"):
        import_wide(path, weights_prefix="ratio_", metrics=["ratio_web"])
    dup = _write(tmp_path / "dup.csv", [*WIDE, "a,0,1,1,1,1,1,z"])
    with pytest.raises(DataError, match=r"dup.csv: row 4, column 'run': duplicate id 'a'"):
        import_wide(dup, weights_prefix="ratio_", id_column="run", metrics=["loss"])
    rep = import_wide(
        dup, weights_prefix="ratio_", id_column="run", metrics=["loss"], drop_invalid=True
    )
    assert rep.table.run_ids == ("b",) and rep.dropped == {"duplicate_id": 2}
    bad = _write(tmp_path / "bad.csv", [*WIDE[:2], "b,1.0,0.0,inf,0.2,6e7,9,y"])
    with pytest.raises(DataError, match=r"bad.csv: row 3, column 'loss': 'inf', expected"):
        import_wide(bad, weights_prefix="ratio_", id_column="run")
    empty_id = _write(tmp_path / "eid.csv", [*WIDE[:2], ",1.0,0.0,1,0.2,6e7,9,y"])
    with pytest.raises(DataError, match=r"eid.csv: row 3, column 'run': empty id"):
        import_wide(empty_id, weights_prefix="ratio_", id_column="run")
