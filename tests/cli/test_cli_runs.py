"""Tests of ``mixopt runs import`` and ``mixopt runs show`` through a fresh argparse parser."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from mixtures.runtable import RunTable

REGMIX = Path(__file__).resolve().parents[2] / "data" / "regmix"
PILE_CC = "metric/the_pile_pile_cc_val_loss"


def _main(argv: list[str]) -> int:
    return main(argv)  # the real entry point: every command, one error path


def _regmix(out: Path, mixtures: Path, results: Path, *extra: str) -> list[str]:
    return [
        "runs", "import", "--format", "regmix", "--mixtures", str(mixtures),
        "--results", str(results), "--out", str(out), *extra,
    ]  # fmt: skip


def test_import_regmix_train_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp" / "runs.parquet"
    argv = _regmix(out, REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv")
    assert _main(argv) == 0
    printed = capsys.readouterr().out
    assert "imported 512 runs, 17 domains, 13 metrics" in printed
    assert "dropped: none" in printed
    t = RunTable.read(out)
    assert (len(t), len(t.domains), len(t.metrics)) == (512, 17, 13)
    assert t.run_ids[0] == "train_mixture_1m:1"


def test_import_regmix_1b_then_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs.parquet"
    assert (
        _main(_regmix(out, REGMIX / "test_mixture_1B.csv", REGMIX / "test_pile_loss_1B.csv")) == 0
    )
    capsys.readouterr()
    assert _main(["runs", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "64 runs, 17 domains, 13 metrics" in shown
    assert "fidelities: model_params" in shown
    values = RunTable.read(out).target(PILE_CC)
    line = next(ln for ln in shown.splitlines() if ln.startswith(PILE_CC))
    runs, low, median = line.split()[1:]
    assert int(runs) == 64
    assert float(low) == pytest.approx(values.min(), rel=1e-3)
    assert float(median) == pytest.approx(np.median(values), rel=1e-3)


def _bad_regmix(tmp_path: Path) -> tuple[Path, Path]:
    mix = tmp_path / "mix.csv"
    mix.write_text("index,train_the_pile_a,train_the_pile_b\n1,0.5,0.5\n2,0.5,0.4\n")
    res = tmp_path / "res.csv"
    res.write_text("index,metric/a\n1,3.0\n2,4.0\n")
    return mix, res


def test_malformed_input_exits_2_with_message_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs.parquet"
    assert _main(_regmix(out, *_bad_regmix(tmp_path))) == 2
    err = capsys.readouterr().err
    assert "mix.csv: row 3, column 'train_the_pile_a..train_the_pile_b': weights sum to 0.9" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_drop_invalid_and_tolerance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs.parquet"
    assert _main(_regmix(out, *_bad_regmix(tmp_path), "--drop-invalid")) == 0
    assert "dropped: bad_sum=1" in capsys.readouterr().out
    assert RunTable.read(out).run_ids == ("mix:1",)
    assert _main(_regmix(out, *_bad_regmix(tmp_path), "--tolerance", "0.2")) == 0
    assert len(RunTable.read(out)) == 2


def test_missing_file_and_row_in_one_file_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mix, res = _bad_regmix(tmp_path)
    assert _main(_regmix(tmp_path / "o.parquet", tmp_path / "nope.csv", res)) == 2
    assert "nope.csv does not exist" in capsys.readouterr().err
    mix.write_text("index,train_the_pile_a,train_the_pile_b\n1,0.5,0.5\n")
    assert _main(_regmix(tmp_path / "o.parquet", mix, res)) == 2
    assert "res.csv: row 3, column 'index': index '2' has no row in mix.csv" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "regmix", "--mixtures", "m.csv"], "--format regmix needs --results"),
        (["--format", "olmix", "--ratios", "r.csv"], "--format olmix needs --metrics"),
        (["--format", "wide"], "--format wide needs --csv"),
        (
            ["--format", "regmix", "--mixtures", "m.csv", "--results", "r.csv", "--cost", "c"],
            r"option\(s\) --cost do not apply to --format regmix",
        ),
    ],
)
def test_inconsistent_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["runs", "import", "--out", str(tmp_path / "o.parquet"), *extra]
    assert _main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_unknown_format_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as exc:
        _main(["runs", "import", "--format", "csv", "--out", "o.parquet"])
    assert exc.value.code == 2


def test_import_olmix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ratios = tmp_path / "swarm_ratios.csv"
    ratios.write_text(",run,name,index,arxiv,dclm:health\n0,abc,n0,0,0.4,0.6\n1,def,n1,1,1.0,0.0\n")
    metrics = tmp_path / "swarm_metrics.csv"
    metrics.write_text(",run,name,index,hellaswag:rc\n0,def,n1,1,1.5\n1,abc,n0,0,1.2\n")
    out = tmp_path / "runs.parquet"
    argv = ["runs", "import", "--format", "olmix", "--ratios", str(ratios)]
    assert _main([*argv, "--metrics", str(metrics), "--out", str(out)]) == 0
    assert "imported 2 runs, 2 domains, 1 metrics" in capsys.readouterr().out
    t = RunTable.read(out)
    np.testing.assert_array_equal(t.target("hellaswag:rc"), [1.2, 1.5])


def test_import_wide(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "mine.csv"
    src.write_text(
        "id,ratio_web,ratio_code,loss,acc,params,hours,note\n"
        "r1,0.5,0.5,2.0,0.3,1e6,1.5,first\n"
        "r2,0.9,0.1,2.5,0.2,1e6,2.5,second\n"
    )
    out = tmp_path / "runs.parquet"
    argv = [
        "runs", "import", "--format", "wide", "--csv", str(src), "--weights-prefix", "ratio_",
        "--metrics", "loss", "--fidelity", "params", "--cost", "hours", "--id-column", "id",
        "--out", str(out),
    ]  # fmt: skip
    assert _main(argv) == 0
    t = RunTable.read(out)
    assert t.run_ids == ("r1", "r2") and t.domains == ("code", "web") and t.metrics == ("loss",)
    np.testing.assert_array_equal(t.values("cost", "cost"), [1.5, 2.5])
    argv[argv.index("--weights-prefix") : argv.index("--weights-prefix") + 2] = [
        "--weights", "ratio_web,,ratio_code",
    ]  # fmt: skip
    capsys.readouterr()
    assert _main(argv) == 2
    assert "empty column name in 'ratio_web,,ratio_code'" in capsys.readouterr().err


def test_show_rejects_a_non_run_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_text("nope")
    assert _main(["runs", "show", str(junk)]) == 2
    assert "junk.parquet is not a readable Parquet file" in capsys.readouterr().err


def test_module_does_not_import_prefect() -> None:
    code = "import sys, cli.runs; sys.exit(int(any(m.startswith('prefect') for m in sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
