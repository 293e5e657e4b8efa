"""Reading a domain folder, streamed: its supported files in a fixed order, cut into input units
(a whole file, a byte range of a plain JSON Lines file, a range of a Parquet file's row groups),
each read as texts without holding more than one text or one batch in memory.

Reading is bounded: a single text (a ``.txt``/``.md`` file, a JSON Lines line) larger than
``max_text_bytes`` after decompression is an error naming the file, found after reading at most
that many bytes, so a small compressed file cannot expand without limit.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import pyarrow as pa
import pyarrow.parquet as pq

from mixtures.errors import ConfigError, DataError
from proxies.documents.text import split_text

_TEXT_SUFFIXES = (".txt", ".md", ".txt.gz", ".md.gz", ".txt.zst", ".md.zst")
_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
_PARQUET_SUFFIXES = (".parquet",)
#: Default bound on one text after decompression: a whole ``.txt`` file or one JSON line.
MAX_TEXT_BYTES = 64 * 1024 * 1024
#: Parquet rows read per batch.
_PARQUET_BATCH = 1024


@dataclass(frozen=True)
class InputUnit:
    """A piece of one input file read as a whole: all of it, the lines of a plain ``.jsonl``
    file that start in bytes ``[start, stop)``, or the row groups ``[start, stop)`` of a
    Parquet file. ``nbytes`` is the input bytes it stands for (compressed, on disk)."""

    path: Path
    kind: str
    start: int = 0
    stop: int | None = None
    nbytes: int = 0

    def describe(self, root: Path) -> list[object]:
        """What identifies this unit's content: relative path, range, size and mtime."""
        st = self.path.stat()
        rel = self.path.relative_to(root).as_posix()
        return [rel, self.kind, self.start, self.stop, st.st_size, st.st_mtime_ns]


def iter_documents(
    folder: Path, *, max_doc_bytes: int = 16_000, max_text_bytes: int = MAX_TEXT_BYTES
) -> Iterator[str]:
    """Yield the documents of one domain folder, files in sorted order, subfolders included.

    ``.txt``/``.md`` files are one text each; ``.jsonl`` lines and ``.parquet`` rows one text
    each. Any text longer than ``max_doc_bytes`` UTF-8 bytes is split at paragraph boundaries
    (then line boundaries) into documents of at most about that size. Names starting with
    ``.`` or ``_`` (markers, temp files) are ignored. Raises DataError naming the path when
    the folder is missing or has no supported file, or a file is not valid UTF-8, not valid
    JSON Lines, lacks the ``text`` field/column, or holds a text over ``max_text_bytes``.
    """
    check_doc_bytes(max_doc_bytes)
    for path in supported_files(Path(folder)):
        unit = InputUnit(path, _kind(path) or "text")
        for text in iter_unit_texts(unit, max_text_bytes=max_text_bytes):
            yield from split_text(text, max_bytes=max_doc_bytes)


def check_doc_bytes(max_doc_bytes: int) -> None:
    if max_doc_bytes < 256:
        raise ConfigError(f"max_doc_bytes must be >= 256, got {max_doc_bytes}")


def supported_files(folder: Path) -> list[Path]:
    """The files of a domain folder that :func:`iter_documents` reads, in the order it reads
    them; DataError when the folder is missing or has none."""
    if not folder.is_dir():
        raise DataError(f"domain folder {folder} does not exist or is not a directory")
    files = sorted(
        (
            p
            for p in folder.rglob("*")
            if p.is_file() and not _is_hidden(p.relative_to(folder)) and _kind(p) is not None
        ),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise DataError(
            f"domain folder {folder} has no supported files (expected "
            f"{', '.join(_TEXT_SUFFIXES + _JSONL_SUFFIXES + _PARQUET_SUFFIXES)})"
        )
    return files


def plan_units(folder: Path, *, unit_bytes: int) -> list[InputUnit]:
    """The folder's files as input units in reading order. A plain ``.jsonl`` file or a
    Parquet file larger than ``unit_bytes`` is cut into ranges of about that size, so one big
    file can be read by several workers; every other file is one unit."""
    units: list[InputUnit] = []
    for path in supported_files(folder):
        kind = _kind(path) or "text"
        size = path.stat().st_size
        if kind == "jsonl" and path.suffix == ".jsonl" and size > unit_bytes:
            units += [
                InputUnit(path, kind, a, min(a + unit_bytes, size), min(unit_bytes, size - a))
                for a in range(0, size, unit_bytes)
            ]
        elif kind == "parquet" and size > unit_bytes:
            units += _parquet_units(path, unit_bytes)
        else:
            units.append(InputUnit(path, kind, nbytes=size))
    return units


def _parquet_units(path: Path, unit_bytes: int) -> list[InputUnit]:
    try:
        meta = pq.ParquetFile(path).metadata
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    units: list[InputUnit] = []
    first, size = 0, 0
    for g in range(meta.num_row_groups):
        size += meta.row_group(g).total_byte_size
        if size >= unit_bytes or g == meta.num_row_groups - 1:
            units.append(InputUnit(path, "parquet", first, g + 1, size))
            first, size = g + 1, 0
    return units or [InputUnit(path, "parquet", nbytes=path.stat().st_size)]


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith((".", "_")) for part in rel.parts)


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    for kind, suffixes in (
        ("text", _TEXT_SUFFIXES),
        ("jsonl", _JSONL_SUFFIXES),
        ("parquet", _PARQUET_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return kind
    return None


def iter_unit_texts(unit: InputUnit, *, max_text_bytes: int = MAX_TEXT_BYTES) -> Iterator[str]:
    """The raw texts of one input unit, streamed."""
    if unit.kind == "parquet":
        yield from _read_parquet(unit)
    elif unit.kind == "jsonl":
        yield from _read_jsonl(unit, max_text_bytes)
    else:
        with _open(unit.path) as fh:
            data = _read_bounded(fh, unit.path, max_text_bytes)
        yield _decode(data, unit.path, _where(unit.path))


def _open(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed as a stream for ``.gz`` and ``.zst``."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if name.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")  # noqa: SIM115 - closed with the reader (closefd)
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def _read_bounded(fh: IO[bytes], path: Path, limit: int) -> bytes:
    try:
        data = fh.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid compressed file ({exc})") from exc
    if len(data) > limit:
        raise DataError(
            f"{path}: one text larger than {limit:,} bytes{_where(path)}; split it into "
            "several files, or raise corpus.max_text_mb"
        )
    return data


def _where(path: Path) -> str:
    return " of the decompressed content" if path.name.lower().endswith((".gz", ".zst")) else ""


def _decode(data: bytes, path: Path, where: str, at: str = "") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}{at}: not valid UTF-8 at byte offset {exc.start}{where} "
            f"(byte {data[exc.start : exc.start + 1]!r})"
        ) from exc


def _read_jsonl(unit: InputUnit, limit: int) -> Iterator[str]:
    """The ``text`` field of each line that starts in the unit's byte range."""
    path = unit.path
    with _open(path) as fh:
        if unit.start > 0:  # the line running through ``start`` belongs to the unit before
            fh.seek(unit.start - 1)
            fh.readline()
        lineno = 0
        while True:
            pos = fh.tell() if unit.stop is not None else 0
            if unit.stop is not None and pos >= unit.stop:
                return
            try:
                line = fh.readline(limit + 1)
            except (OSError, EOFError, zlib.error) as exc:
                raise DataError(f"{path}: not a valid compressed file ({exc})") from exc
            if not line:
                return
            lineno += 1
            at = f":{lineno}" if unit.start == 0 else f" (line at byte {pos})"
            if len(line) > limit:
                raise DataError(
                    f"{path}{at}: a line longer than {limit:,} bytes{_where(path)}; "
                    "raise corpus.max_text_mb if that is one document"
                )
            if line.strip():
                yield _json_text(_decode(line, path, _where(path), at), path, at)


def _json_text(line: str, path: Path, at: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}{at}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        got = type(record.get("text")).__name__ if isinstance(record, dict) else "not an object"
        raise DataError(f"{path}{at}: expected an object with a string field 'text', got {got}")
    return record["text"]


def _read_parquet(unit: InputUnit) -> Iterator[str]:
    path = unit.path
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    schema = pf.schema_arrow
    if "text" not in schema.names:
        raise DataError(f"{path}: Parquet file has no 'text' column (columns: {schema.names})")
    kind = schema.field("text").type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise DataError(f"{path}: column 'text' must be a string column, got {kind}")
    stop = unit.stop if unit.stop is not None else pf.metadata.num_row_groups
    groups = list(range(unit.start, stop))
    row = sum(pf.metadata.row_group(g).num_rows for g in range(unit.start))
    for batch in pf.iter_batches(batch_size=_PARQUET_BATCH, columns=["text"], row_groups=groups):
        for value in batch.column(0).to_pylist():
            if value is None:
                raise DataError(f"{path}: column 'text' is null at row {row}")
            row += 1
            yield value
