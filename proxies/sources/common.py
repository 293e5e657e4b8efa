"""What every step of a source build shares: the finished marker, the error of a source that
cannot be had, and running an external program."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mixtures.errors import DataError

SUCCESS_MARKER = "_SUCCESS"
"""Written last into a finished domain folder or unpacked package: its presence means done."""

CMD_TIMEOUT = 600
"""Seconds; an apt, pip or groff call that hangs longer is a failure, not a wait."""

RENDER_ENV = {
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    # groff's date registers read it instead of the clock; Debian 12's release day.
    "SOURCE_DATE_EPOCH": "1686355200",
    "COLUMNS": "80",
    "MANWIDTH": "80",
}
"""Set for the programs whose output becomes training text (groff, bible), over the caller's
environment: their output then does not depend on the machine's locale, time zone, date or
terminal width, so two builds of one package version give the same bytes."""


class SourceUnavailable(DataError):
    """A package, command or file a domain needs cannot be had on this machine."""


def run(
    cmd: list[str], *, cwd: Path | None = None, check: bool = True, render: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` non-interactively, capturing text output; with ``check``, a non-zero exit
    raises SourceUnavailable naming the command and its last line of error output.
    ``render``: its output is training text, so it runs under ``RENDER_ENV``."""
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT,
        check=False,
        env={
            **os.environ,
            "DEBIAN_FRONTEND": "noninteractive",
            **(RENDER_ENV if render else {}),
        },
    )
    if check and proc.returncode != 0:
        raise SourceUnavailable(
            f"{' '.join(cmd[:3])} failed ({proc.returncode}): {last_line(proc.stderr)}"
        )
    return proc


def last_line(text: str | None) -> str:
    """The last non-blank line of a program's error output, for a one-line reason."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error output"
