"""What tasks record beside every result: the git sha of the code that produced it."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.cache  # one subprocess per process, not one per proxy run
def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"
