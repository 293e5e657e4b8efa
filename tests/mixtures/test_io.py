"""Atomic writes: the whole file or the old one, and the mode a plain write would give."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import polars as pl
import pytest

from mixtures.io import atomic_write_bytes, write_parquet


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_get_the_umask_mode(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        write_parquet(pl.DataFrame({"a": [1]}), tmp_path / "runs.parquet")
    finally:
        os.umask(old)
    for name in ("a.bin", "runs.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    from mixtures.io import atomic_path

    atomic_write_bytes(tmp_path / "f", b"old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "f") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert (tmp_path / "f").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
