"""Start and stop a local Prefect server (UI + API) on 127.0.0.1, for tests, benchmarks and demos.

``prefect server start`` is the real thing a user runs; this module only wraps it so that a test
can own one server from start to stop: a free port, its own PREFECT_HOME (database), a health
wait, and a clean stop (SIGINT first, as the server shuts its services down on it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from mixtures.errors import RunError

#: Environment of every Prefect process started here: no telemetry (the machine may be offline),
#: and a patient ephemeral-server start on busy 2-core machines.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_executable() -> str:
    """The ``prefect`` command of this interpreter's environment."""
    candidate = Path(sys.executable).parent / "prefect"
    return str(candidate) if candidate.exists() else "prefect"


def wait_healthy(api_url: str, *, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``<api_url>/health`` until it answers 200; RunError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RunError(f"prefect server exited with code {proc.returncode} before it was up")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RunError(f"prefect server at {api_url} did not answer /health within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGINT (graceful for prefect server and serve), then SIGTERM, then SIGKILL."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def prefect_server(
    home: str | Path, *, port: int | None = None, timeout: float = 120
) -> Iterator[str]:
    """Run ``prefect server start --host 127.0.0.1`` for the ``with`` block; yields the API URL.

    The server's database and logs live under ``home`` (its PREFECT_HOME); the log is
    ``home/server.log``.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    # The UI calls the API at PREFECT_UI_API_URL, which defaults to port 4200.
    env = {**os.environ, **QUIET_ENV, "PREFECT_HOME": str(home), "PREFECT_UI_API_URL": api_url}
    env.pop("PREFECT_API_URL", None)
    cmd = [prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(api_url, timeout=timeout, proc=proc)
        yield api_url
    finally:
        stop_process(proc)


def drain_prefect_workers() -> None:
    """Send buffered logs and events now, while the API they belong to is still the current one.

    Left buffered, they are flushed at exit against whatever API is current then, which starts
    a temporary server (tens of seconds) only to receive them.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    with suppress(RuntimeError):  # the log worker was never started: nothing to send
        APILogWorker.instance().drain()
    EventsWorker.drain_all()


@contextmanager
def use_server(api_url: str, home: str | Path) -> Iterator[None]:
    """Point this process (and the processes it starts) at ``api_url`` for the ``with`` block.

    Prefect reads its settings once at import, so the environment alone is not enough in a
    process that already imported it: the settings are overridden too, and both restored after.
    """
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    saved = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_HOME")}
    os.environ.update({"PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)})
    try:
        with (
            temporary_settings({PREFECT_API_URL: api_url, PREFECT_HOME: str(home)}),
            # Threads whose context was copied before this block (Prefect's own service and
            # task threads) read the process-global settings: replace those too, as Prefect's
            # test harness does (a private helper; prefect is pinned).
            _temporary_global_settings_context(get_settings_context()),
        ):
            try:
                yield
            finally:
                drain_prefect_workers()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
