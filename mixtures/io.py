"""Atomic file writes: a reader, or a process killed mid-write, sees the old file or the whole
new one, never a part. Every file mixopt writes between steps goes through here."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on error
    remove it. ``fsync`` flushes the data to disk before the rename (run records)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the umask's mode
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    """The process's umask: from /proc on Linux (no change to the process), else by setting it
    and restoring it at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> Path:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def write_json(path: str | Path, data: Any, *, indent: int = 2, fsync: bool = False) -> Path:
    """JSON with sorted keys (stable diffs); values JSON cannot hold are written with ``str``."""
    text = json.dumps(data, indent=indent, sort_keys=True, default=str)
    return atomic_write_text(path, text, fsync=fsync)


def write_parquet(frame: Any, path: str | Path) -> Path:
    """A polars DataFrame as Parquet, atomically."""
    with atomic_path(path) as tmp:
        frame.write_parquet(tmp)
    return Path(path)
