"""Pool workers end with the command that started them, however it ends: a killed
``bench replay`` or ``surrogate cv`` leaves no worker running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Starts run_jobs' pool of 2 workers, each blocked in signal.pause(), and prints its pid.
_SCRIPT = """
import os, signal
from mixtures.evaluation.common import run_jobs
print(os.getpid(), flush=True)
run_jobs(signal.pause, [{}, {}], {}, workers=2)
"""


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (ended, not yet reaped by its new parent) counts as ended
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_pool_workers_end_with_their_parent(sig):
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    parent = int(proc.stdout.readline())
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while time.monotonic() < deadline:
        # the pool's workers (the spawn start method adds a resource tracker beside them)
        workers = [p for p in _children(parent) if "spawn_main" in _cmdline(p)]
        if len(workers) == 2:
            break
        time.sleep(0.2)
    assert len(workers) == 2, "the pool's two workers did not start"
    os.kill(parent, sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them behind if the assertion fails
        os.kill(w, signal.SIGKILL)
    assert not left, f"pool workers {left} outlived their parent: {[_cmdline(w) for w in left]}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
