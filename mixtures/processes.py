"""Worker processes that end with the process that started them, and whether a process that
left a record (a run lease, a flow run) is still alive."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from pathlib import Path

#: prctl option: the signal the kernel sends this process when its parent thread exits (Linux).
_PR_SET_PDEATHSIG = 1


def end_with_parent(parent: int | None = None) -> None:
    """Ask the kernel to send this process SIGTERM when its parent exits, however the parent
    ends (SIGKILL included): a pool worker must never outlive the command that started it and
    go on using the cores. ``parent``: the pid of the process that started this one; if it is
    no longer this process's parent (it died before this call), this process ends now. A no-op
    where ``prctl`` does not exist (not Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (field 22 of
    ``/proc/<pid>/stat``); None where that cannot be read (no such process, a zombie, not
    Linux). With the pid it names one process for the life of the machine: a pid can be reused,
    the pair cannot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie has ended, only unreaped
        return None
    return int(fields[19])


def process_started_at(pid: int) -> float | None:
    """Process ``pid``'s start as a Unix time (boot time + its start ticks), good to about a
    second; None where unknown (see ``process_start_ticks``)."""
    ticks = process_start_ticks(pid)
    if ticks is None:
        return None
    try:
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(float(line.split()[1]) for line in lines if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine and has not ended (a zombie, ended but
    not yet reaped by its parent, counts as ended where ``/proc`` shows it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): the signal test above is all there is
    return state[state.rfind(")") + 2 :][:1] not in ("Z", "X")


def same_process_alive(pid: int, start_ticks: int | None) -> bool:
    """Whether the process that was ``pid`` with start ``start_ticks`` (``process_start_ticks``
    when it was recorded) still runs: False when the pid is gone or now names a process started
    later. ``start_ticks`` None (recorded where /proc was not readable): the pid alone decides."""
    if not pid_alive(pid):
        return False
    if start_ticks is None:
        return True
    now = process_start_ticks(pid)
    return now is None or now == start_ticks
