"""The CLI's temporary Prefect server: started first, used, stopped; never outlives the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.server import TemporaryAPI

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict:
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect"), **extra)
    env.pop("PREFECT_API_URL", None)
    return env


def _session_servers(sid: int) -> list[int]:
    """PIDs of temporary-server processes in session ``sid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[3]) == sid and b"runtime.temporary_server" in cmdline:
            out.append(int(stat.parent.name))
    return out


def _prepare_corpus_cmd(tmp_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        "prepare-corpus",
        "--config",
        str(ROOT / "configs/smoke.yaml"),
        "--set",
        f"corpus.cache_dir={tmp_path / 'corpus'}",
    ]


def test_nothing_started_when_an_api_url_is_set(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with TemporaryAPI() as api:
        assert api.proc is None and api.api_url is None
        with api.running():
            pass


def test_server_process_rejects_bad_arguments():
    out = subprocess.run(
        [sys.executable, "-m", "runtime.temporary_server", "not-a-port"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "usage" in out.stderr


@contextlib.contextmanager
def _cli_with_its_server(tmp_path: Path, **popen: Any) -> Iterator[subprocess.Popen]:
    """``mixopt prepare-corpus`` in a session of its own, yielded once its temporary server
    process exists (up to 60 s); whatever is left of the session is killed afterwards."""
    proc = subprocess.Popen(
        _prepare_corpus_cmd(tmp_path), cwd=ROOT, env=_env(tmp_path), start_new_session=True, **popen
    )
    try:
        deadline = time.time() + 60
        while not _session_servers(proc.pid) and time.time() < deadline:
            time.sleep(0.02)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.slow
def test_cli_flow_runs_on_its_server_and_stops_it(tmp_path):
    with _cli_with_its_server(
        tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        servers = _session_servers(proc.pid)
        log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log[-3000:]
    assert len(servers) == 1, "the CLI starts exactly one temporary server"
    assert "token corpus:" in log
    # the flow ran against that server and it recorded the run: the database has it
    import sqlite3

    db = sqlite3.connect(tmp_path / "prefect" / "prefect.db")
    rows = db.execute(
        "select r.state_type from flow_run r join flow f on r.flow_id = f.id "
        "where f.name = 'prepare_corpus'"
    ).fetchall()
    assert rows and all(r[0] == "COMPLETED" for r in rows)
    tasks = db.execute("select state_type from task_run").fetchall()
    assert tasks and all(t[0] == "COMPLETED" for t in tasks), tasks  # batched states flushed
    assert _session_servers(proc.pid) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG, /proc")
@pytest.mark.slow
def test_server_exits_when_the_cli_is_killed(tmp_path):
    with _cli_with_its_server(
        tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        assert _session_servers(proc.pid), "the temporary server did not start"
        os.kill(proc.pid, signal.SIGKILL)  # the CLI only, not its process group
        proc.wait()
        deadline = time.time() + 30
        while _session_servers(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert _session_servers(proc.pid) == [], "the server outlived the CLI"


@pytest.mark.slow
def test_profile_api_url_is_honoured(tmp_path, prefect_server_url):
    """A URL set in the Prefect profile (not the environment) wins over the temporary server."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        f'active = "remote"\n\n[profiles.remote]\nPREFECT_API_URL = "{prefect_server_url}"\n'
    )
    out = subprocess.run(
        _prepare_corpus_cmd(tmp_path),
        cwd=ROOT,
        env=_env(tmp_path, PREFECT_PROFILES_PATH=str(profiles)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    body = json.dumps({"flows": {"name": {"any_": ["prepare_corpus"]}}}).encode()
    req = urllib.request.Request(
        f"{prefect_server_url}/flow_runs/filter",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        runs = json.loads(resp.read())
    assert any(r["state_type"] == "COMPLETED" for r in runs)
    assert not (tmp_path / "prefect" / "prefect.db").exists(), "no local server database"
