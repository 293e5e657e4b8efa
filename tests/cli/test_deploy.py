"""Deployments: served with a schedule and a typed form; a scheduled run is picked up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.serve import DEFAULT_CRON, build_deployments
from configs.schema import load_config

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


def _config(corpus_dir: Path, *extra: str):
    return load_config(SMOKE, overrides=[f"corpus.cache_dir={corpus_dir}", *extra])


def test_deployments_carry_schedule_typed_parameters_and_absolute_dir(tmp_path) -> None:
    config = _config(tmp_path / "corpus")
    optimize, target = build_deployments(config, experiment_dir="rel/exp")
    assert (optimize.name, target.name) == ("smoke", "smoke")
    assert optimize.schedules[0].schedule.cron == DEFAULT_CRON
    assert not target.schedules
    assert Path(optimize.parameters["experiment_dir"]).is_absolute()
    # The pydantic config becomes a JSON schema the UI renders as a form.
    schema = optimize._parameter_openapi_schema.model_dump()
    assert schema["properties"]["config"]["$ref"].endswith("ExperimentConfig")
    assert "RunnerConfig" in schema["definitions"]
    assert set(target._parameter_openapi_schema.required) == {"config", "mixtures"}
    (unscheduled, _) = build_deployments(config, cron=None, name="other")
    assert unscheduled.name == "other" and not unscheduled.schedules


def _wait(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.slow
def test_served_deployment_picks_up_a_scheduled_target_run(prefect_api, smoke_corpus_dir, tmp_path):
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    from configs.experiment import ExperimentDir
    from runtime.server import stop_process
    from tasks.target import schedule_target_run

    sets = [
        f"corpus.cache_dir={smoke_corpus_dir}",
        "target_run.seeds=[0]",
        "target_run.baselines=[]",
    ]
    config = _config(smoke_corpus_dir, *sets[1:])
    exp = tmp_path / "exp"
    assert (
        schedule_target_run(config, {"a": 1.0}, ExperimentDir(exp), deployment_name="smoke") is None
    )

    env = {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    cmd = [
        sys.executable,
        "-m",
        "cli.serve",
        "--config",
        str(SMOKE),
        "--experiment-dir",
        str(exp),
    ]
    for item in sets:
        cmd += ["--set", item]
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115  (kept open for the process's life)
    serve = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with get_client(sync_client=True) as client:

            def deployed():
                try:  # serve registers them one after the other: wait for both
                    client.read_deployment_by_name("target_run/smoke")
                    return client.read_deployment_by_name("optimize_mixture/smoke")
                except ObjectNotFound:
                    return None

            optimize = _wait(deployed, timeout=90, what="the served optimize deployment")
            assert optimize.schedules[0].schedule.cron == DEFAULT_CRON
            assert optimize.parameters["config"]["name"] == "smoke"
            form = optimize.parameter_openapi_schema["definitions"]["ExperimentConfig"]
            assert {"corpus", "target", "runner"} <= set(form["properties"])

            chosen = {"py_licenses": 0.5, "py_metadata": 0.3, "py_stdlib": 0.2}
            at = datetime.now(UTC) + timedelta(seconds=3)
            run_id = schedule_target_run(
                config, chosen, ExperimentDir(exp), deployment_name="smoke", at=at
            )
            assert run_id is not None
            run = client.read_flow_run(run_id)
            assert run.parameters["mixtures"] == {"chosen": chosen}
            assert run.state.is_scheduled()

            def finished():
                state = client.read_flow_run(run_id).state
                return state if state.is_final() else None

            state = _wait(finished, timeout=150, what="the served target run to finish")
            assert state.is_completed(), (state, (tmp_path / "serve.log").read_text()[-3000:])
        assert (exp / "comparison.parquet").is_file()
    finally:
        stop_process(serve)
        log.close()
