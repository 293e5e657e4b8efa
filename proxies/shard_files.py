"""Finding, reading and scanning token files (``.bin`` of a given dtype, ``.npy`` with or without
a header): each file's layout, and one cached chunked scan of its ids."""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from mixtures.errors import DataError
from mixtures.io import write_json
from proxies.shards import ShardPiece

TOKEN_SUFFIXES = (".bin", ".npy")
#: dtypes a flat file may be declared as (``corpus.token_dtype``): nanoGPT's uint16, uint32 past
#: 65,536 ids, Megatron's int32.
RawDtype = Literal["uint16", "uint32", "int32"]
RAW_DTYPES: tuple[str, ...] = get_args(RawDtype)
NPY_MAGIC = b"\x93NUMPY"
#: Tokens read at a time by the scan: 8M tokens is 16-32 MB, small beside any machine's memory.
SCAN_CHUNK = 1 << 23
#: Bytes of each end of a file that its content sample hashes.
SAMPLE_BYTES = 1 << 20
#: Version of the cached scan records; a record of another version is scanned again.
SCAN_VERSION = 1


@dataclass(frozen=True)
class ShardFile:
    """One token file as found: its layout and its stat."""

    path: Path
    where: str
    """The config entry it came from, for messages (``corpus.token_domains.code.train``)."""
    dtype: np.dtype
    offset: int
    n_tokens: int
    size: int
    mtime_ns: int

    def stamp(self) -> list[Any]:
        """What the build key records of the file: a change to any of it is a rebuild."""
        return [str(self.path), self.size, self.mtime_ns, self.dtype.str, self.offset]

    def piece(self, start: int = 0, stop: int | None = None) -> ShardPiece:
        return ShardPiece(
            path=str(self.path),
            dtype=self.dtype.str,
            offset=self.offset,
            start=start,
            stop=self.n_tokens if stop is None else stop,
            size=self.size,
        )


@dataclass(frozen=True)
class ShardScan:
    """What one chunked pass over a file found."""

    min_id: int
    max_id: int
    n_eos: int
    sample_sha256: str
    """sha256 of the file's size and its first and last ``SAMPLE_BYTES``: the content's
    identity in the fingerprint, independent of where the file lies and of its mtime."""


def find_token_files(entries: Sequence[str], *, where: str) -> list[Path]:
    """The token files the entries name, in order: a file, a folder's token files (sorted), or
    a glob pattern's matches (sorted, token suffixes only). DataError naming the entry when one
    matches nothing."""
    found: list[Path] = []
    for i, entry in enumerate(entries):
        here = f"{where}[{i}]"
        path = Path(entry).expanduser()
        if any(ch in entry for ch in "*?["):
            hits = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            files = [p for p in hits if p.is_file() and p.suffix in TOKEN_SUFFIXES]
            if not files:
                raise DataError(f"{here}: pattern {entry!r} matches no .bin or .npy file")
        elif path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix in TOKEN_SUFFIXES and p.name[0] not in "._"
            )
            if not files:
                raise DataError(f"{here}: folder {path} holds no .bin or .npy file")
        elif path.is_file():
            if path.suffix not in TOKEN_SUFFIXES:
                raise DataError(f"{here}: {path} is not a .bin or .npy token file")
            files = [path]
        else:
            raise DataError(f"{here}: {path} does not exist")
        found.extend(p.resolve() for p in files)
    return found


def read_shard(path: Path, *, raw_dtype: str | None, where: str) -> ShardFile:
    """A file's dtype, header offset and token count: from the header of a ``.npy`` that has
    one, else ``raw_dtype``. DataError naming the file when it cannot be read as token ids."""
    stat = path.stat()
    with open(path, "rb") as fh:
        has_header = path.suffix == ".npy" and fh.read(len(NPY_MAGIC)) == NPY_MAGIC
    if has_header:
        dtype, offset, n = _npy_layout(path)
    else:
        if raw_dtype is None:
            raise DataError(
                f"{where}: {path} has no header; set corpus.token_dtype (or the domain's dtype), "
                f"one of {RAW_DTYPES}, to read its ids"
            )
        dtype, offset = np.dtype(raw_dtype), 0
        if stat.st_size % dtype.itemsize:
            raise DataError(
                f"{where}: {path} has {stat.st_size} bytes, not a multiple of {dtype.itemsize} "
                f"({dtype.name}): a truncated file, or not {dtype.name}"
            )
        n = stat.st_size // dtype.itemsize
    if n == 0:
        raise DataError(f"{where}: {path} holds no tokens (empty shard)")
    return ShardFile(path, where, dtype, offset, n, stat.st_size, stat.st_mtime_ns)


def _npy_layout(path: Path) -> tuple[np.dtype, int, int]:
    """(dtype, header bytes, token count) of a ``.npy`` file with a header."""
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable .npy file: {err}") from None
    if arr.dtype.kind not in "iu":
        raise DataError(f"{path}: dtype {arr.dtype} is not an integer dtype of token ids")
    if arr.ndim > 1 and not arr.flags.c_contiguous:
        raise DataError(f"{path}: a Fortran-order array cannot be read as a flat token stream")
    return arr.dtype, int(arr.offset), int(arr.size)


def scan_shard(shard: ShardFile, *, eos_id: int, cache_dir: Path) -> ShardScan:
    """Smallest and largest id, EOS count and content sample of one file, from a chunked pass
    (``SCAN_CHUNK`` tokens at a time); read from ``cache_dir`` when the file is unchanged."""
    stamp = {"version": SCAN_VERSION, "file": shard.stamp(), "eos_id": eos_id}
    cache = cache_dir / f"{hashlib.sha256(str(shard.path).encode()).hexdigest()[:32]}.json"
    if cache.is_file():
        try:
            record = json.loads(cache.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = {}  # a damaged cache entry is only a lost shortcut: scan again
        if record.get("stamp") == stamp:
            return ShardScan(**record["scan"])
    data = shard.piece().open()
    lo, hi, n_eos = None, None, 0
    for start in range(0, len(data), SCAN_CHUNK):
        chunk = np.asarray(data[start : start + SCAN_CHUNK])
        c_lo, c_hi = int(chunk.min()), int(chunk.max())
        lo = c_lo if lo is None else min(lo, c_lo)
        hi = c_hi if hi is None else max(hi, c_hi)
        n_eos += int(np.count_nonzero(chunk == eos_id))
    scan = ShardScan(int(lo or 0), int(hi or 0), n_eos, _content_sample(shard))
    write_json(cache, {"stamp": stamp, "scan": asdict(scan)})
    return scan


def _content_sample(shard: ShardFile) -> str:
    h = hashlib.sha256(str(shard.size).encode())
    with open(shard.path, "rb") as fh:
        h.update(fh.read(SAMPLE_BYTES))
        fh.seek(max(0, shard.size - SAMPLE_BYTES))
        h.update(fh.read(SAMPLE_BYTES))
    return h.hexdigest()
