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
from runtime.crashes import mark_crashed_flow_runs, report_to_stderr

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


def wait_healthy(
    api_url: str,
    *,
    timeout: float,
    proc: subprocess.Popen | None = None,
    interval: float = 0.5,
) -> None:
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
        time.sleep(interval)
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


#: Server services switched off in the CLI's temporary server: they exist for things that outlive
#: one process (deployments and schedules, workers, automations, pauses, crashed-run detection),
#: and a temporary server stops with the command that started it. A user's own setting wins.
TEMPORARY_SERVER_OFF = (
    "SCHEDULER",
    "LATE_RUNS",
    "FOREMAN",
    "CANCELLATION_CLEANUP",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "TRIGGERS",
)

#: Settings of the CLI's temporary server (a user's own setting wins). The task-run recorder,
#: which writes the task runs' states from the events clients send, writes each event at once by
#: default; under SQLite its write lands in the middle of the API's own writes (creating a
#: subflow's run) and the API answers 503 "database is locked", which the client retries after
#: a fixed 2 s back-off, once or twice per command. Batched, it writes every 5 s
#: (``flush_interval``) and when the server stops; nothing is lost on a normal stop.
TEMPORARY_SERVER_SETTINGS = {"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "1000"}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the process that started it dies, even by SIGKILL."""
    import ctypes

    with suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _profile_api_url() -> str | None:
    """The active Prefect profile's PREFECT_API_URL, read without importing Prefect (fast).

    Only a pre-check, so that a user whose profile names a server gets no local server started
    at all; Prefect's own settings decide in ``TemporaryAPI.running``.
    """
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or data.get("active")
    profile = data.get("profiles", {}).get(active, {})
    url = profile.get("PREFECT_API_URL") if isinstance(profile, dict) else None
    return str(url) if url else None


class TemporaryAPI:
    """Prefect's temporary local API server, started before Prefect is even imported.

    Without a configured API, Prefect starts a temporary server (``uvicorn`` running
    ``prefect.server.api.server:create_app``) at the first flow call and waits for it. Started
    that way it comes after importing Prefect and its server module (seconds) and then boots
    for seconds more. Started here, as the first thing a command does, its boot overlaps every
    import.
    The server is Prefect's own app with the environment markers Prefect's temporary server sets
    and the same database; its process is ``runtime.temporary_server`` (which exits faster).

    Use as a context manager around the whole command; call :meth:`running` around the flow call.
    With ``PREFECT_API_URL`` in the environment or in the active profile, nothing is started. A
    URL set elsewhere (``.env``, ``prefect.toml``), or temporary servers turned off, is only known
    once Prefect's settings load: then the server started here is stopped at once, unused, and
    Prefect's settings rule.
    """

    def __init__(self, *, timeout: float | None = None) -> None:
        self.proc: subprocess.Popen | None = None
        self.api_url: str | None = None
        self._timeout = timeout

    def __enter__(self) -> TemporaryAPI:
        if not (os.environ.get("PREFECT_API_URL") or _profile_api_url()):
            self._spawn()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _spawn(self) -> None:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        env = {
            **os.environ,
            # what Prefect's own temporary server sets: no UI, ephemeral mode
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        for service in TEMPORARY_SERVER_OFF:
            env.setdefault(f"PREFECT_SERVER_SERVICES_{service}_ENABLED", "false")
        for key, value in TEMPORARY_SERVER_SETTINGS.items():
            env.setdefault(key, value)
        cmd = [sys.executable, "-m", "runtime.temporary_server", str(port)]
        linux = sys.platform.startswith("linux")
        self.proc = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent if linux else None)

    def _stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=10)
            self.proc = None

    @contextmanager
    def running(self) -> Iterator[None]:
        """Point Prefect at the server, wait until it answers, mark the flow runs that a killed
        process left Running as Crashed (``runtime.crashes``), then run the block (the flow
        call)."""
        with self._serving():
            try:
                mark_crashed_flow_runs(say=report_to_stderr)
            except Exception as err:  # housekeeping: it must never stop the command
                report_to_stderr(f"could not look for crashed flow runs: {err!r}")
            yield

    @contextmanager
    def _serving(self) -> Iterator[None]:
        """Point Prefect at the server and wait until it answers, for the block.

        Flow-run heartbeats are off inside the block: they let a lasting server tell a crashed
        run, but this server stops with the process, and every flow and subflow otherwise waits
        up to 1 s at its end for its heartbeat thread.
        """
        if self.proc is None:
            yield
            return
        from prefect.context import SettingsContext
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            self._stop()  # Prefect is configured otherwise: its settings rule
            yield
            return
        timeout = self._timeout or float(settings.server.ephemeral.startup_timeout_seconds)
        with use_server(self.api_url, settings.home):
            try:
                wait_healthy(self.api_url, timeout=timeout, proc=self.proc, interval=0.05)
            except RunError as err:
                raise RunError(
                    f"Prefect's temporary API server did not start ({err}; its output is "
                    "above). Set PREFECT_API_URL to use a running server (`prefect server start`)."
                ) from None
            ctx = SettingsContext.get()
            flows = ctx.settings.flows.model_copy(update={"heartbeat_frequency": None})
            quiet = ctx.settings.model_copy(update={"flows": flows})
            with SettingsContext(profile=ctx.profile, settings=quiet):
                yield
