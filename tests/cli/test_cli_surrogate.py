"""``mixopt surrogate cv`` and ``mixopt bench replay`` on a small slice of RegMix's runs."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from cli import surrogate as cli_surrogate
from cli.main import main
from mixtures.importers import import_regmix
from mixtures.runtable import RunTable

REGMIX = Path(__file__).resolve().parents[2] / "data" / "regmix"
PILE_CC = "metric/the_pile_pile_cc_val_loss"


def _main(argv: list[str]) -> int:
    return main(argv)  # the real entry point: every command, one error path


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> tuple[Path, Path]:
    """60 training runs and 20 test runs of RegMix's 1M models, as run tables."""
    root = tmp_path_factory.mktemp("regmix")
    train = import_regmix(REGMIX / "train_mixture_1m.csv", REGMIX / "train_pile_loss_1m.csv")
    test = import_regmix(REGMIX / "test_mixture_1m.csv", REGMIX / "test_pile_loss_1m.csv")
    a = train.table.select(train.table.run_ids[:60]).write(root / "train.parquet")
    b = test.table.select(test.table.run_ids[:20]).write(root / "test.parquet")
    return a, b


def test_cv_prints_and_writes_scores(tables, tmp_path, capsys) -> None:
    train, test = tables
    out = tmp_path / "cv.json"
    argv = ["surrogate", "cv", str(train), "--target", PILE_CC, "--method", "ridge",
            "--train-sizes", "16,32", "--repeats", "2", "--test", str(test),
            "--json", str(out)]  # fmt: skip
    assert _main(argv) == 0
    data = json.loads(out.read_text())
    assert data["surrogate"] == "ridge" and data["runs"] == 60
    assert [(s["size"], s["test"], s["repeats"]) for s in data["summary"]] == [
        (16, "test", 2),
        (32, "test", 2),
    ]
    assert data["summary"][1]["spearman_mean"] > 0.7  # ridge on sqrt weights ranks well at 32
    assert "spearman" in capsys.readouterr().out


def test_replay_prints_and_writes_runs_to_top(tables, tmp_path, capsys) -> None:
    train, _ = tables
    out = tmp_path / "replay.json"
    argv = ["bench", "replay", str(train), "--target", PILE_CC, "--optimizer", "regmix",
            "--surrogate", "ridge", "--n-init", "8", "--batch", "all", "--budget", "20",
            "--repeats", "3", "--top-fraction", "0.05", "--json", str(out)]  # fmt: skip
    assert _main(argv) == 0
    data = json.loads(out.read_text())
    assert data["pool"] == 60 and data["top_runs"] == 3 and len(data["per_repeat"]) == 3
    for r in data["per_repeat"]:
        n = len(r["order"])
        assert len(set(r["order"])) == n and n in (8, 20)  # the 8 initial runs, then 12 at once
        assert n == 20 or r["curve"][n - 1] == 0.0  # a repeat stops early only at the pool's best
    assert set(data["summary"]["regret_median"]) == {"16"}
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "median runs to top" in printed
    # 3 top runs of 60: random needs 61 / 4 on average; 8 random runs first cap the saving
    s = data["summary"]
    assert data["random_start"] == 8 and s["random_expected_mean"] == 61 / 4
    assert f"random search needs 15.2 runs on average (median {s['random_expected_median']:g})" in (
        printed
    )
    assert f"at most {s['saving_ceiling']:.1f}x after 8 random runs first" in printed


def test_replay_with_a_low_fidelity_prior(tables, tmp_path, capsys) -> None:
    """The 60-run slice as cheap runs, the 20-run slice as the pool: no random start."""
    cheap, pool = tables
    out = tmp_path / "lowfi.json"
    argv = ["bench", "replay", str(pool), "--target", PILE_CC, "--budget", "10", "--repeats",
            "2", "--top-fraction", "0.05", "--low-fidelity", str(cheap),
            "--low-fidelity-surrogate", "ridge", "--workers", "1", "--json", str(out)]  # fmt: skip
    assert _main(argv) == 0
    data = json.loads(out.read_text())
    assert data["params"]["low_fidelity"] == {
        "runs_file": str(cheap),
        "surrogate": "ridge",
        "domains": [],
    }
    assert data["random_start"] == 0 and data["top_runs"] == 1
    s = data["summary"]
    assert s["saving_ceiling"] == s["random_expected_mean"] == 21 / 2
    assert s["hit_rate"] == 1.0 and s["runs_to_top_median"] <= 5
    printed = capsys.readouterr().out
    assert f"low-fidelity prior: ridge fitted on 60 runs of {cheap}" in printed
    assert "at most 10.5x with no random run first" in printed
    assert _main([*argv, "--optimizer", "random"]) == 2
    assert "--low-fidelity applies to --optimizer bo only" in capsys.readouterr().err
    alone = argv[: argv.index("--low-fidelity")] + argv[argv.index("--low-fidelity") + 2 :]
    assert _main(alone) == 2  # --low-fidelity-surrogate ridge without the cheap runs
    assert "need --low-fidelity CHEAP_RUNS" in capsys.readouterr().err


def test_replay_with_a_transferred_kernel(tables, tmp_path, capsys) -> None:
    """The 20-run slice's GitHub losses give the GP's kernel; the 60-run slice is the pool."""
    pool, earlier = tables
    out = tmp_path / "kernel.json"
    argv = ["bench", "replay", str(pool), "--target", PILE_CC, "--budget", "20", "--repeats",
            "2", "--top-fraction", "0.05", "--surrogate", "gp_hybrid", "--kernel-from",
            str(earlier), "--kernel-target", "metric/the_pile_github_val_loss", "--workers", "1",
            "--json", str(out)]  # fmt: skip
    assert _main(argv) == 0
    data = json.loads(out.read_text())
    assert data["params"]["kernel_from"] == {
        "runs_file": str(earlier),
        "target": "metric/the_pile_github_val_loss",
        "surrogate": "gp_hybrid",
        "domains": [],
    }
    assert data["random_start"] == 4 and data["top_runs"] == 3
    for r in data["per_repeat"]:
        assert len(set(r["order"])) == len(r["order"])
    printed = capsys.readouterr().out
    assert f"transferred kernel: gp_hybrid fitted on 20 runs of {earlier}" in printed
    assert _main([*argv, "--optimizer", "regmix"]) == 2
    assert "--kernel-from applies to --optimizer bo only" in capsys.readouterr().err
    alone = argv[: argv.index("--kernel-from")] + argv[argv.index("--kernel-from") + 2 :]
    assert _main(alone) == 2  # --kernel-target without the earlier runs
    assert "need --kernel-from EARLIER_RUNS" in capsys.readouterr().err
    assert _main([*argv, "--surrogate", "gp_average"]) == 2
    assert "single GP surrogate (e.g. 'gp_hybrid'), got 'gp_average'" in capsys.readouterr().err


def test_replay_maps_an_earlier_swarms_domains(tables, tmp_path, capsys) -> None:
    """The cheap runs over renamed domains: --low-fidelity-domains maps them, or it fails."""
    cheap, pool = tables
    old = RunTable.read(cheap)
    renamed = RunTable.from_arrays(
        old.run_ids,
        [f"old_{d}" for d in old.domains],
        old.weights(),
        {m: old.values("metric", m) for m in old.metrics},
    ).write(tmp_path / "renamed.parquet")
    out = tmp_path / "mapped.json"
    argv = ["bench", "replay", str(pool), "--target", PILE_CC, "--budget", "10", "--repeats",
            "1", "--top-fraction", "0.05", "--low-fidelity", str(renamed),
            "--low-fidelity-surrogate", "ridge", "--workers", "1", "--json", str(out)]  # fmt: skip
    assert _main(argv) == 2
    assert "map them with --low-fidelity-domains" in capsys.readouterr().err
    assert _main([*argv, "--low-fidelity-domains", "old*"]) == 2
    assert "takes PATTERN=NAME, got 'old*'" in capsys.readouterr().err
    assert _main([*argv, "--low-fidelity-domains", "old_*=*"]) == 0
    data = json.loads(out.read_text())
    assert data["params"]["low_fidelity"]["domains"] == ["old_*=*"]
    # the same prior as with the original names: the same run order
    plain = tmp_path / "plain.json"
    argv[argv.index(str(renamed))] = str(cheap)
    argv[argv.index(str(out))] = str(plain)
    assert _main(argv) == 0
    assert json.loads(plain.read_text())["per_repeat"][0]["order"] == data["per_repeat"][0]["order"]


def test_bad_input_exits_2_with_a_message(tables, tmp_path, capsys) -> None:
    train, _ = tables
    argv = ["surrogate", "cv", str(train), "--target", "metric/nope", "--method", "ridge",
            "--json", str(tmp_path / "x.json")]  # fmt: skip
    assert _main(argv) == 2
    assert "unknown metric 'metric/nope'" in capsys.readouterr().err
    argv = ["bench", "replay", str(train), "--target", PILE_CC, "--optimizer", "random",
            "--budget", "500", "--json", str(tmp_path / "y.json")]  # fmt: skip
    assert _main(argv) == 2
    assert "budget must be between 1 and the pool size 60" in capsys.readouterr().err
    missing = tmp_path / "missing.parquet"
    assert _main(["surrogate", "cv", str(missing), "--target", PILE_CC, "--json", "z"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_module_does_not_import_prefect() -> None:
    # Static check of this module's own imports; tests/test_purity.py covers mixtures/ itself.
    tree = ast.parse(Path(cli_surrogate.__file__).read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and not [m for m in names if m.split(".")[0] in {"prefect", "tasks"}]
