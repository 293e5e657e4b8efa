"""Bad input through the real command line: a clear message naming the problem, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _mixopt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _on_folders(tmp_path: Path, folders: dict) -> list[str]:
    """Arguments of a smoke experiment in tmp_path on the given domain folders, ending with
    ``--set`` so that one more override can follow."""
    spec = "{" + ", ".join(f"{k}: {v}" for k, v in folders.items()) + "}"
    sets = ["corpus.source=folders", f"corpus.folders={spec}", "target.domain=delta"]
    sets.append(f"corpus.cache_dir={tmp_path / 'corpus'}")
    args = ["--config", str(ROOT / "configs/smoke.yaml"), "--experiment-dir", str(tmp_path / "exp")]
    for item in sets:
        args += ["--set", item]
    return [*args, "--set"]


def test_bad_config_lists_problems_and_exits_2(tmp_path):
    out = _mixopt(
        tmp_path,
        "optimize",
        "--config",
        str(ROOT / "configs/smoke.yaml"),
        "--set",
        "sweep.n_runs=0",
        "--set",
        "proxy.model=huge",
    )
    assert out.returncode == 2
    assert "sweep.n_runs" in out.stderr and "proxy.model" in out.stderr
    assert "Traceback" not in out.stderr


def test_invalid_inline_mixture_is_named(tmp_path):
    out = _mixopt(
        tmp_path,
        "target-run",
        "--config",
        str(ROOT / "configs/smoke.yaml"),
        "--weights",
        "py_stdlib=abc",
    )
    assert out.returncode == 2 and "weight of 'py_stdlib' is not a number" in out.stderr


@pytest.mark.slow
def test_missing_domain_folder_is_named_and_nothing_is_lost(tmp_path, tiny_domains):
    keep = tmp_path / "exp" / "keep.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("earlier work")
    folders = {**tiny_domains, "ghost": tmp_path / "nope"}
    out = _mixopt(tmp_path, "optimize", *_on_folders(tmp_path, folders), "corpus.min_domains=5")
    assert out.returncode == 2, out.stderr[-2000:]
    assert str(tmp_path / "nope") in out.stderr
    assert keep.read_text() == "earlier work"


@pytest.mark.slow
def test_sweep_where_every_run_fails_exits_nonzero(tmp_path, tiny_domains):
    args = _on_folders(tmp_path, tiny_domains)
    # no GPU here: every run fails
    out = _mixopt(tmp_path, "sweep", *args, "sweep.n_runs=2", "--set", "proxy.device=cuda")
    assert out.returncode == 2, out.stderr[-2000:]
    assert "no proxy run finished ok" in out.stderr
    assert (tmp_path / "exp" / "runs_meta.parquet").is_file()


def test_auto_surrogate_picks_best_finite_spearman():
    from mixtures.errors import DataError
    from tasks.surrogate import pick_surrogate

    quality = [
        {"surrogate": "ridge", "spearman": 0.7},
        {"surrogate": "lightgbm", "spearman": None},
        {"surrogate": "gp", "spearman": 0.9},
        {"surrogate": "ensemble", "spearman": 0.9},
    ]
    assert pick_surrogate("auto", quality) == "gp"  # ties go to the first listed
    assert pick_surrogate("ridge", quality) == "ridge"
    with pytest.raises(DataError, match="no surrogate has a finite"):
        pick_surrogate("auto", [{"surrogate": "ridge", "spearman": None}])


@pytest.mark.parametrize("command", ["optimize", "sweep", "prepare-corpus", "target-run"])
def test_bad_config_fails_before_any_server_starts(command, monkeypatch, capsys):
    from cli.main import main
    from runtime import server

    def no_server(self):
        raise AssertionError("a Prefect server was started for a bad config")

    monkeypatch.setattr(server.TemporaryAPI, "__enter__", no_server)
    argv = [command, "--config", str(ROOT / "configs/smoke.yaml"), "--set", "sweep.n_runs=0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "sweep.n_runs" in err and "Traceback" not in err


def test_bad_mixture_file_is_named_before_any_server_starts(tmp_path, monkeypatch, capsys):
    from cli.main import main
    from runtime import server

    monkeypatch.setattr(server.TemporaryAPI, "__enter__", lambda self: 1 / 0)
    smoke = str(ROOT / "configs/smoke.yaml")
    for content, message in [
        (b"\x00\xff\xfe", "is not a JSON file"),
        (b"[0.5, 0.5]", "must hold an object of domain: weight numbers"),
    ]:
        path = tmp_path / "mixture.json"
        path.write_bytes(content)
        assert main(["target-run", "--config", smoke, "--mixture", str(path)]) == 2
        assert message in capsys.readouterr().err


def test_weights_off_one_are_an_error_naming_the_sum(tmp_path, monkeypatch, capsys):
    from cli.main import main
    from runtime import server

    monkeypatch.setattr(server.TemporaryAPI, "__enter__", lambda self: 1 / 0)
    smoke = str(ROOT / "configs/smoke.yaml")
    argv = ["target-run", "--config", smoke, "--weights", "py_stdlib=0.6,py_licenses=0.5"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--weights: weights sum to 1.1, expected 1" in err
    assert "pass weights that sum to 1" in err and "Traceback" not in err
    path = tmp_path / "mixture.json"
    path.write_text('{"mixture": {"py_stdlib": 0.25, "py_licenses": 0.25}}')
    assert main(["target-run", "--config", smoke, "--mixture", str(path)]) == 2
    assert f"--mixture {path}: weights sum to 0.5, expected 1" in capsys.readouterr().err


def test_weights_summing_to_one_pass_unchanged(tmp_path):
    import json

    from cli.main import _parse_weights, _read_mixture
    from mixtures.mixture import Mixture

    assert _parse_weights("a=0.1,b=0.2,c=0.7") == {"a": 0.1, "b": 0.2, "c": 0.7}
    # chosen.json holds weights rounded to 6 decimals that still sum to 1
    thirds = Mixture({"a": 1.0, "b": 1.0, "c": 1.0}, normalize=True).rounded(6)
    path = tmp_path / "chosen.json"
    path.write_text(json.dumps({"mixture": thirds}))
    assert _read_mixture(path) == thirds


def test_debug_prints_the_traceback_above_the_error(tmp_path, capsys):
    """--debug, before or after the subcommand, adds the traceback; the error line stays last."""
    from cli.main import main

    missing = str(tmp_path / "nope.yaml")
    assert main(["optimize", "--config", missing]) == 2
    assert "Traceback" not in capsys.readouterr().err
    for argv in (
        ["--debug", "optimize", "--config", missing],
        ["optimize", "--config", missing, "--debug"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "ConfigError" in err
        assert err.rstrip().endswith(f"mixopt: error: config file {missing} does not exist")


def test_an_unexpected_exception_is_reported_as_a_bug_without_traceback(monkeypatch, capsys):
    """An exception that is not mixopt's own is a bug: one line says so, exit code 1."""
    from cli import status
    from cli.main import main

    def broken(exp_dir):
        raise KeyError("result")

    monkeypatch.setattr(status, "summarize_experiment", broken)
    assert main(["status", "somewhere"]) == 1
    err = capsys.readouterr().err
    assert "mixopt: error: unexpected KeyError: 'result'" in err
    assert "a bug in mixopt: rerun with --debug" in err and "Traceback" not in err
    assert main(["--debug", "status", "somewhere"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_prefect_records_repeating_an_input_error_stay_off_the_console():
    """The console filter drops exactly the records that repeat a mixopt error."""
    import logging

    from cli.errors import _RepeatsOfInputErrors
    from mixtures.errors import DataError

    def record(name, level, msg, args=(), exc=None):
        exc_info = (type(exc), exc, None) if exc is not None else None
        return logging.LogRecord(name, level, "engine.py", 1, msg, args, exc_info)

    quiet = _RepeatsOfInputErrors()
    err = DataError("folder d has no supported files")
    task = "prefect.task_runs"
    assert not quiet.filter(
        record(task, logging.ERROR, "Task run failed with exception: %r", (err,), err)
    )
    # the state line that repeats it, at any level, from the task or the flow
    failed = "Finished in state Failed('Task run encountered an exception DataError: folder d')"
    assert not quiet.filter(record(task, logging.ERROR, failed))
    assert not quiet.filter(
        record("prefect.flow_runs", logging.INFO, failed.replace("Task", "Flow"))
    )
    # everything else passes: progress, other errors and their tracebacks
    assert quiet.filter(record(task, logging.INFO, "training a 512-id BPE"))
    bug = ValueError("a bug")
    assert quiet.filter(
        record(task, logging.ERROR, "Task run failed with exception: %r", (bug,), bug)
    )
    assert quiet.filter(
        record(task, logging.ERROR, "Finished in state Failed('ValueError: a bug')")
    )
