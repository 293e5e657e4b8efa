"""The smoke sweep on a real 2-worker Dask LocalCluster, and on a local 2-CPU Ray instance,
gives the local runner's results seed for seed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from configs.schema import RunnerConfig, load_config
from mixtures.errors import ConfigError
from proxies.runs import RunStore
from runtime.runners import make_task_runner

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def test_runner_kinds_map_to_prefect_task_runners(monkeypatch) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    thread = make_task_runner(RunnerConfig(kind="thread", max_workers=3))
    assert isinstance(thread, ThreadPoolTaskRunner)
    assert thread._max_workers == 3
    local = make_task_runner(RunnerConfig(kind="dask", max_workers=2, torch_threads=1))
    assert isinstance(local, DaskTaskRunner)
    assert local.cluster_kwargs["n_workers"] == 2
    assert local.cluster_kwargs["threads_per_worker"] == 1
    assert local.cluster_kwargs["env"]["OMP_NUM_THREADS"] == "1"
    remote = make_task_runner(RunnerConfig(kind="dask", address="tcp://10.0.0.5:8786"))
    assert remote.address == "tcp://10.0.0.5:8786"
    monkeypatch.setitem(__import__("sys").modules, "prefect_ray", None)
    with pytest.raises(ConfigError, match="prefect-ray is not installed"):
        make_task_runner(RunnerConfig(kind="ray"))


def _results(store: str) -> dict[str, dict]:
    return {r["run_id"]: r["result"] for r in RunStore(store).records()}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_distributed_sweep_equals_thread_sweep_run_for_run(
    kind, prefect_api, smoke_corpus_dir, tmp_path
):
    from configs.experiment import ExperimentDir
    from flows.prepare_corpus import prepare_corpus
    from flows.proxy_sweep import proxy_sweep
    from proxies.runs import write_run_list
    from tasks.experiment import plan_experiment_task
    from tasks.proxy import sample_sweep_task

    config = load_config(
        SMOKE,
        overrides=[
            f"corpus.cache_dir={smoke_corpus_dir}",
            "sweep.n_runs=2",
            "runner.torch_threads=1",
        ],
    )
    tokens = prepare_corpus(config)
    plan = plan_experiment_task.fn(config, tokens, ExperimentDir(tmp_path))
    runs = sample_sweep_task.fn(config, plan)
    stores = {}
    run_list = str(write_run_list(runs, tmp_path / "run_lists"))
    for name, workers in (("thread", 1), (kind, 2)):
        runner = make_task_runner(
            config.runner.model_copy(update={"kind": name, "max_workers": workers})
        )
        stores[name] = str(tmp_path / name)
        labels = proxy_sweep.with_options(task_runner=runner)(run_list, tokens, stores[name])
        assert len(labels) == len(runs) == 4
    local, remote = _results(stores["thread"]), _results(stores[kind])
    assert sorted(local) == sorted(remote) == sorted(spec.run_id for _, spec in runs)
    for run_id, result in local.items():
        assert result["status"] == remote[run_id]["status"] == "ok"
        # Same seed, same mixture, one torch thread each: bit-identical losses, not just close.
        assert result["val_loss"] == remote[run_id]["val_loss"], run_id


def test_a_local_ray_instance_is_made_with_a_warning_about_its_open_ports(caplog) -> None:
    pytest.importorskip("prefect_ray")
    from runtime.runners import RAY_LOCAL_WARNING

    with caplog.at_level(logging.WARNING, logger="mixopt"):
        make_task_runner(RunnerConfig(kind="ray"))
    assert RAY_LOCAL_WARNING in caplog.messages
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mixopt"):
        make_task_runner(RunnerConfig(kind="ray", address="ray://head:10001"))
    assert RAY_LOCAL_WARNING not in caplog.messages
