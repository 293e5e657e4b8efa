"""A sweep killed with SIGKILL and re-run recomputes only the runs that had not finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
N_RUNS = 10  # + uniform and natural baselines


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )
    env.pop("PREFECT_API_URL", None)
    return env


def _cmd(tmp_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        "sweep",
        "--config",
        str(ROOT / "configs/smoke.yaml"),
        "--experiment-dir",
        str(tmp_path / "exp"),
        "--set",
        f"corpus.cache_dir={tmp_path / 'corpus'}",
        "--set",
        f"sweep.n_runs={N_RUNS}",
        # long enough that the kill lands mid-sweep
        "--set",
        "proxy.train_tokens=16384",
    ]


def _records(store: Path) -> dict[str, float]:
    return {p.stem: json.loads(p.read_text())["finished_at"] for p in store.glob("*.json")}


@pytest.mark.slow
def test_sigkill_then_rerun_recomputes_nothing_finished(tmp_path):
    store = tmp_path / "exp" / "proxy_runs"
    proc = subprocess.Popen(
        _cmd(tmp_path),
        cwd=ROOT,
        env=_env(tmp_path),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while len(_records(store)) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its temporary Prefect server
        proc.wait()
    before = _records(store)
    assert 3 <= len(before) < N_RUNS + 2, "the kill should land mid-sweep"
    # every record the kill left behind is whole: written atomically, it parses and is finished
    for path in store.glob("*.json"):
        assert json.loads(path.read_text())["result"]["status"] == "ok", path

    out = subprocess.run(
        _cmd(tmp_path), cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    after = _records(store)
    assert len(after) == N_RUNS + 2
    recomputed = [r for r, t in before.items() if after[r] != t]
    assert recomputed == []
    trained_now = len(after) - len(before)
    logs = out.stdout + out.stderr
    assert f"{N_RUNS + 2} runs: {trained_now} trained now, {len(before)} finished earlier" in logs
    assert f"{N_RUNS + 2} runs finished ok" in out.stdout
