"""An experiment folder is bound to its config: another config that changes results is refused
before any work, or with --force moves the earlier results to previous/ (run stores stay)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.binding import bind_experiment_dir, describe_differences, result_differences
from configs.experiment import ExperimentDir
from configs.schema import load_config
from mixtures.errors import ConfigError, MixoptError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"


def _config(*overrides: str):
    return load_config(SMOKE, overrides=list(overrides))


def _finished_folder(root: Path, *overrides: str) -> ExperimentDir:
    """A folder as a finished optimize leaves it: config.yaml saved by the flow's own task,
    result files, and one proxy run record."""
    from tasks.experiment import setup_experiment_task

    exp = ExperimentDir(root)
    root.mkdir(parents=True, exist_ok=True)
    setup_experiment_task.fn(_config(*overrides), exp)
    for path in (exp.table(), exp.table_meta(), exp.chosen, exp.report, exp.bo_round(0)):
        path.write_text("earlier")
    (exp.plots).mkdir()
    (exp.plots / "mixtures.png").write_text("png")
    exp.proxy_store.mkdir()
    (exp.proxy_store / "abc.json").write_text("{}")
    return exp


def test_a_differing_config_is_refused_naming_the_field(tmp_path):
    exp = _finished_folder(tmp_path / "exp", "sweep.n_runs=16")
    with pytest.raises(ConfigError) as err:
        bind_experiment_dir(exp, _config("sweep.n_runs=8", "proxy.lr=0.01"))
    message = str(err.value)
    assert "sweep.n_runs: 16 -> 8" in message
    assert "proxy.lr: 0.003 -> 0.01" in message
    assert "--force" in message and "another experiment folder" in message
    assert exp.chosen.read_text() == "earlier" and exp.config.is_file()  # nothing touched


def test_the_same_config_or_an_operational_change_is_free(tmp_path):
    exp = _finished_folder(tmp_path / "exp")
    assert bind_experiment_dir(exp, _config()) is None
    operational = _config(
        "runner.max_workers=4",
        "runner.torch_threads=1",
        "target_run.deployment=elsewhere",
        f"corpus.cache_dir={tmp_path / 'cache'}",
        "corpus.min_domains=2",
    )
    assert bind_experiment_dir(exp, operational) is None
    assert exp.chosen.read_text() == "earlier"


def test_force_moves_the_results_aside_and_keeps_the_run_store(tmp_path):
    exp = _finished_folder(tmp_path / "exp", "sweep.n_runs=16")
    said: list[str] = []
    dest = bind_experiment_dir(exp, _config(), force=True, say=said.append)
    assert dest is not None and dest.parent == exp.previous
    moved = {p.name for p in dest.iterdir()}
    assert {"config.yaml", "meta.json", "runs.parquet", "runs_meta.parquet"} <= moved
    assert {"chosen.json", "report.md", "bo_round_00.json", "plots"} <= moved
    assert (dest / "plots" / "mixtures.png").read_text() == "png"
    assert not exp.config.exists() and not exp.chosen.exists() and not exp.table().exists()
    assert (exp.proxy_store / "abc.json").read_text() == "{}"
    assert said == [f"earlier results of another config in {exp} moved to {dest}"]
    # the folder is free now: the new config binds without a word
    assert bind_experiment_dir(exp, _config()) is None


def test_many_differences_are_cut_short():
    old = {"a": 1, "b": {"c": 2, "d": [1]}, "e": 3, "f": 4, "g": 5, "runner": {"kind": "x"}}
    new = {"a": 2, "b": {"c": 3, "d": [2]}, "e": 4, "f": 5, "g": 6, "runner": {"kind": "y"}}
    diffs = result_differences(old, new)
    assert [d[0] for d in diffs] == ["a", "b.c", "b.d", "e", "f", "g"]
    text = describe_differences(diffs)
    assert text.startswith("a: 1 -> 2; b.c: 2 -> 3; b.d: [1] -> [2]; e: 3 -> 4; and 2 more")
    assert describe_differences(result_differences({"x": {"y": 1}}, {})) == "x.y: 1 -> <absent>"


def test_cli_refuses_before_any_server_and_force_moves_results(tmp_path, monkeypatch, capsys):
    from cli.main import main
    from runtime import server

    def server_reached(self):
        raise MixoptError("server reached")

    monkeypatch.setattr(server.TemporaryAPI, "__enter__", server_reached)
    exp = _finished_folder(tmp_path / "exp", "sweep.n_runs=16")
    for command in ("optimize", "sweep"):
        argv = [command, "--config", str(SMOKE), "--experiment-dir", str(exp)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "mixopt: error: experiment folder" in err and "sweep.n_runs: 16 -> 8" in err
        assert "server reached" not in err
    assert main(["optimize", "--config", str(SMOKE), "--experiment-dir", str(exp), "--force"]) == 2
    err = capsys.readouterr().err
    assert "moved to" in err and "server reached" in err  # moved aside, then the work starts
    assert [p.name for p in exp.previous.iterdir()] and not exp.config.exists()


def test_runs_from_python_or_a_deployment_are_checked_too(tmp_path):
    from tasks.experiment import plan_experiment_task, setup_experiment_task

    exp = ExperimentDir(tmp_path / "exp")
    setup_experiment_task.fn(_config(), exp)
    other = _config("sweep.n_runs=12")
    # the main flow's first task, and target_run's (which plans without setting up)
    with pytest.raises(ConfigError, match=r"holds results of another config \(sweep.n_runs"):
        setup_experiment_task.fn(other, exp)
    with pytest.raises(ConfigError, match="sweep.n_runs"):
        plan_experiment_task.fn(other, str(tmp_path / "no-corpus"), exp)
    assert "n_runs: 12" not in exp.config.read_text()  # nothing of the other config written
