"""Run leases: of the processes that share a run store, one at a time trains a given run.

A lease is the file ``<run_id>.lease`` beside the run's record. It is created with
``O_CREAT | O_EXCL``, so exactly one process gets it, and holds the holder's host, pid, process
start (Linux) and a random token. While the run trains, a heartbeat thread touches the file's
mtime every ``LeaseTimes.heartbeat_seconds``. A process that finds a live lease leaves the run
to its holder (and may wait for its record); the holder removes the lease when the run ends,
failed or not.

A lease is stale, and is broken, when its holder cannot be training any more: on the same host,
its pid is gone or now names a process started later (a SIGKILLed sweep); on any host, its
heartbeat is older than ``LeaseTimes.stale_seconds`` (a process this host cannot see). Breaking is
serialised by a second ``O_EXCL`` file, ``<run_id>.lease.break``, under which the lease is checked
again, so that two processes that both found it stale never remove a lease one of them has just
taken.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mixtures.errors import RunError
from mixtures.processes import process_start_ticks, same_process_alive

LEASE_SUFFIX = ".lease"
BREAK_SUFFIX = ".break"


@dataclass(frozen=True)
class LeaseTimes:
    """How leases are kept alive and judged.

    The defaults leave room for a busy or remote file system: a heartbeat every 10 s, and a
    lease of another host taken as dead after 2 minutes without one (NFS caches attributes for
    up to a minute). On the holder's own host a dead process is seen at once, by its pid.
    """

    heartbeat_seconds: float = 10.0
    """How often a holder touches its lease."""
    stale_seconds: float = 120.0
    """A lease not touched for this long is stale, whatever its host."""
    poll_seconds: float = 2.0
    """How often a process waiting for another's run looks at the lease again."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: host, pid, process start (clock ticks since boot; None off Linux),
    when the lease was taken (Unix time) and the token that tells this lease from a later one."""

    host: str
    pid: int
    process_start: int | None
    taken_at: float
    token: str

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host}"

    @classmethod
    def this_process(cls) -> Holder:
        pid = os.getpid()
        return cls(
            host=socket.gethostname(),
            pid=pid,
            process_start=process_start_ticks(pid),
            taken_at=time.time(),
            token=uuid.uuid4().hex,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Holder:
        start = data.get("process_start")
        return cls(
            host=str(data["host"]),
            pid=int(data["pid"]),
            process_start=None if start is None else int(start),
            taken_at=float(data["taken_at"]),
            token=str(data["token"]),
        )


class RunLeased(RunError):
    """The run is being trained by another process (raised only when the caller asked not to
    wait for it)."""

    def __init__(self, run_id: str, holder: Holder | None) -> None:
        self.run_id = run_id
        self.holder = holder
        who = str(holder) if holder is not None else "another process"
        super().__init__(f"run {run_id} is being trained by {who}")


@dataclass(frozen=True)
class LeaseState:
    """What a lease file says now: its holder (None while the holder is still writing it) and
    whether it is live."""

    holder: Holder | None
    live: bool


def lease_path(folder: Path, run_id: str) -> Path:
    return folder / f"{run_id}{LEASE_SUFFIX}"


def read_lease(path: Path, times: LeaseTimes) -> LeaseState | None:
    """The state of the lease at ``path``; None when there is none."""
    try:
        mtime = path.stat().st_mtime
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        holder: Holder | None = Holder.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError):
        holder = None  # created but not yet written: live while fresh
    if time.time() - mtime > times.stale_seconds:
        return LeaseState(holder, live=False)
    if holder is not None and holder.host == socket.gethostname():
        return LeaseState(holder, live=same_process_alive(holder.pid, holder.process_start))
    return LeaseState(holder, live=True)


class RunLeases:
    """The leases one call holds in one run-store folder, kept alive by one heartbeat thread.

    Use as a context manager: leaving it releases every lease still held and stops the thread,
    also on an exception. Thread-safe: a pack's members are released one by one as they finish.
    """

    def __init__(self, folder: Path, times: LeaseTimes) -> None:
        self.folder = folder
        self.times = times
        self._held: dict[str, tuple[Path, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLeases:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def take(self, run_id: str) -> bool:
        """Take the lease of ``run_id``: True when this call got it; False when a live lease
        of another holder (or of another call of this process) has it. A stale lease is broken
        first."""
        path = lease_path(self.folder, run_id)
        me = Holder.this_process()
        for _ in range(3):  # each round either takes the lease, finds it live, or breaks it
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                state = read_lease(path, self.times)
                if state is not None and state.live:
                    return False
                if state is not None:
                    self._break(path)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(me), fh)
            with self._lock:
                self._held[run_id] = (path, me.token)
                self._start_heartbeat()
            return True
        return False  # others kept taking and breaking it: leave the run to them this time

    def release(self, run_id: str) -> None:
        """Give the lease of ``run_id`` back (a no-op when this object does not hold it). The
        file is removed only while it still holds this lease's token: a lease broken as stale
        and taken by another process stays theirs."""
        with self._lock:
            entry = self._held.pop(run_id, None)
        if entry is None:
            return
        path, token = entry
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            if json.loads(path.read_text(encoding="utf-8"))["token"] == token:
                path.unlink()

    def close(self) -> None:
        """Release every lease still held and stop the heartbeat."""
        with self._lock:
            held = list(self._held)
        for run_id in held:
            self.release(run_id)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.times.heartbeat_seconds + 1)

    def _start_heartbeat(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._beat, name="run-lease-heartbeat", daemon=True
            )
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.times.heartbeat_seconds):
            with self._lock:
                paths = [path for path, _ in self._held.values()]
            for path in paths:
                # Gone: broken by a process that took this one for dead (it was stopped, or its
                # file system stalled past ``stale_seconds``); the run still finishes here.
                with contextlib.suppress(FileNotFoundError):
                    os.utime(path)

    def _break(self, path: Path) -> None:
        """Remove the lease at ``path`` if it is still stale, under the break file."""
        breaker = path.with_name(path.name + BREAK_SUFFIX)
        try:
            fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            # Another process is breaking it. A break file left by a process killed within
            # these few calls would block the run forever: it goes once it is stale itself.
            with contextlib.suppress(FileNotFoundError):
                if time.time() - breaker.stat().st_mtime > self.times.stale_seconds:
                    breaker.unlink()
            return
        try:
            state = read_lease(path, self.times)
            if state is not None and not state.live:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)
            breaker.unlink(missing_ok=True)


def wait_released(folder: Path, run_id: str, times: LeaseTimes) -> None:
    """Return once ``run_id`` has no live lease: its holder released it, or it went stale."""
    path = lease_path(folder, run_id)
    while True:
        state = read_lease(path, times)
        if state is None or not state.live:
            return
        time.sleep(times.poll_seconds)
