"""Flow runs left Running by a killed process are marked Crashed by the next mixopt command."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.crashes import mark_crashed_flow_runs, owner_is_dead, process_label

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_the_owner_of_a_flow_run_is_judged_on_this_host_only():
    now = time.time()
    assert owner_is_dead(f"{HOST}:{_dead_pid()}", now, host=HOST)
    assert not owner_is_dead(f"{HOST}:{os.getpid()}", now, host=HOST)  # this live process
    # this pid, but the flow run began an hour before this process did: a reused pid
    assert owner_is_dead(f"{HOST}:{os.getpid()}", now - 3600, host=HOST)
    assert not owner_is_dead(f"another-host:{_dead_pid()}", now, host=HOST)
    for unknown in (None, "", "12345", f"{HOST}:abc"):
        assert not owner_is_dead(unknown, now, host=HOST)


@pytest.mark.slow
def test_only_runs_whose_process_died_are_marked_crashed(prefect_api):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    @flow(name="crash-probe")
    def probe() -> None:
        """Never called: its runs are made Running by hand."""

    owners = {
        "dead": f"{HOST}:{_dead_pid()}",
        "alive": process_label(),
        "elsewhere": f"another-host:{_dead_pid()}",
        "unrecorded": None,
    }
    with get_client(sync_client=True) as client:
        ids = {}
        for name, owner in owners.items():
            run = client.create_flow_run(probe, name=name, state=Running())
            if owner is not None:
                client.update_flow_run(run.id, infrastructure_pid=owner)
            ids[name] = run.id
        said: list[str] = []
        assert mark_crashed_flow_runs(say=said.append) == [ids["dead"]]
        states = {name: client.read_flow_run(i).state for name, i in ids.items()}
    assert {name: s.type.value for name, s in states.items()} == {
        "dead": "CRASHED",
        "alive": "RUNNING",
        "elsewhere": "RUNNING",
        "unrecorded": "RUNNING",
    }
    assert owners["dead"] in states["dead"].message and "killed" in states["dead"].message
    assert len(said) == 1 and "'dead'" in said[0]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"), DO_NOT_TRACK="1")
    env.pop("PREFECT_API_URL", None)
    return env


def _cli(tmp_path: Path, command: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        command,
        "--config",
        str(ROOT / "configs/smoke.yaml"),
        "--set",
        f"corpus.cache_dir={tmp_path / 'corpus'}",
        *(["--experiment-dir", str(tmp_path / "exp")] if command == "sweep" else []),
        *(["--set", "proxy.train_tokens=65536"] if command == "sweep" else []),  # killed mid-run
    ]


def _flow_runs(home: Path) -> dict[str, tuple[str, str | None]]:
    """Flow run name -> (state type, infrastructure_pid), read from the database file (no
    server), to see what the killed command left."""
    with sqlite3.connect(home / "prefect.db") as db:
        rows = db.execute("SELECT name, state_type, infrastructure_pid FROM flow_run").fetchall()
    return {name: (state, pid) for name, state, pid in rows}


@pytest.mark.slow
def test_a_sigkilled_sweep_leaves_crashed_flow_runs_after_the_next_command(tmp_path):
    from prefect.client.orchestration import get_client

    from runtime.server import prefect_server, use_server

    home = tmp_path / "prefect"
    proc = subprocess.Popen(
        _cli(tmp_path, "sweep"),
        cwd=ROOT,
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    store = tmp_path / "exp" / "proxy_runs"
    deadline = time.time() + 300
    while not list(store.glob("*.lease")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # a lease: the sweep's flows run and a proxy trains
    assert proc.poll() is None, "the sweep ended before it trained"
    os.kill(proc.pid, signal.SIGKILL)  # the CLI only; its temporary server ends with it
    proc.wait()
    time.sleep(3)  # the server's graceful stop
    left = _flow_runs(home)
    owner = f"{HOST}:{proc.pid}"
    assert left["sweep-smoke"] == ("RUNNING", owner)
    killed = {name for name, (state, pid) in left.items() if state == "RUNNING"}
    assert "sweep-smoke" in killed and len(killed) == 2  # the sweep and its proxy_sweep subflow

    out = subprocess.run(
        _cli(tmp_path, "prepare-corpus"),
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr.count("was left Running") == 2
    with prefect_server(home) as url, use_server(url, home), get_client(sync_client=True) as client:
        runs = {r.name: r for r in client.read_flow_runs()}
    for name in killed:
        state = runs[name].state
        assert state is not None and state.type.value == "CRASHED", (name, state)
        assert owner in (state.message or "")
    # the command that marked them ran its own flow to completion, recorded as its own
    (new,) = [r for name, r in runs.items() if name not in left]
    assert new.state is not None and new.state.type.value == "COMPLETED"
    assert (new.infrastructure_pid or "").startswith(f"{HOST}:")
    assert new.infrastructure_pid != owner
