"""Worker processes that end with the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

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
