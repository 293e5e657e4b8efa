"""Deployments: served with a schedule and a typed form; a scheduled run is picked up, and
only a deployment that something serves receives one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

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


class _FakeClient:
    """Prefect's sync client as schedule_target_run uses it: one deployment, or none."""

    def __init__(self, deployment=None) -> None:
        self.deployment = deployment

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read_deployment_by_name(self, name: str):
        from prefect.exceptions import ObjectNotFound

        if self.deployment is None:
            raise ObjectNotFound(None)
        return self.deployment


def _deployment(status: str, polled_ago: float | None):
    polled = None if polled_ago is None else datetime.now(UTC) - timedelta(seconds=polled_ago)
    return SimpleNamespace(status=SimpleNamespace(value=status), last_polled=polled)


def test_only_a_recently_polled_deployment_counts_as_served() -> None:
    from tasks.target import why_not_served

    now = datetime.now(UTC)

    def why(deployment):
        return why_not_served(_FakeClient(deployment), "target_run/x", now=now, max_age=60)

    assert why(None) == "no such deployment"
    assert why(_deployment("READY", 5)) is None
    assert "never polled" in why(_deployment("NOT_READY", None))
    # the serve process is gone: its deployment stays registered, its last poll ages
    assert "last polled 3600 s ago" in why(_deployment("READY", 3600))
    assert why(_deployment("NOT_READY", 5)) is not None


def test_a_deployment_nobody_serves_gets_no_flow_run(monkeypatch, tmp_path) -> None:
    import prefect
    import prefect.deployments

    from configs.experiment import ExperimentDir
    from tasks.target import schedule_target_run

    created = []

    def fake_run_deployment(name, **kwargs):
        created.append(name)
        return SimpleNamespace(id="run-1")

    monkeypatch.setattr(prefect.deployments, "run_deployment", fake_run_deployment)
    config = _config(tmp_path / "corpus")
    exp = ExperimentDir(tmp_path / "exp")

    def hand_off(deployment):
        monkeypatch.setattr(prefect, "get_client", lambda **kw: _FakeClient(deployment))
        return schedule_target_run(config, {"a": 1.0}, exp, deployment_name="smoke")

    stale = hand_off(_deployment("READY", 3600))
    assert (stale.where, stale.flow_run_id, stale.registered) == ("inline", None, True)
    assert "no live server for deployment target_run/smoke" in stale.message()
    absent = hand_off(None)
    assert absent.where == "inline" and not absent.registered
    assert created == []
    served = hand_off(_deployment("READY", 2))
    assert (served.where, served.flow_run_id) == ("deployment", "run-1")
    assert "target_run/smoke as flow run run-1" in served.message()
    assert created == ["target_run/smoke"]


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
    absent = schedule_target_run(config, {"a": 1.0}, ExperimentDir(exp), deployment_name="smoke")
    assert absent.where == "inline" and absent.reason == "no such deployment"

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
            _wait(
                lambda: client.read_deployment_by_name("target_run/smoke").last_polled,
                timeout=60,
                what="the serve process's first poll",
            )
            assert optimize.schedules[0].schedule.cron == DEFAULT_CRON
            assert optimize.parameters["config"]["name"] == "smoke"
            form = optimize.parameter_openapi_schema["definitions"]["ExperimentConfig"]
            assert {"corpus", "target", "runner"} <= set(form["properties"])

            chosen = {"py_licenses": 0.5, "py_metadata": 0.3, "py_stdlib": 0.2}
            at = datetime.now(UTC) + timedelta(seconds=3)
            handoff = schedule_target_run(
                config, chosen, ExperimentDir(exp), deployment_name="smoke", at=at
            )
            assert handoff.where == "deployment", handoff
            run_id = handoff.flow_run_id
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
    # the serve process is gone: with a short liveness window its deployment no longer counts
    time.sleep(3)
    gone = schedule_target_run(
        config, chosen, ExperimentDir(exp), deployment_name="smoke", max_age=2
    )
    assert gone.where == "inline" and gone.registered, gone
