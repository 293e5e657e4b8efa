"""Reading a domain folder: its supported files, in a fixed order, as texts."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mixtures.errors import ConfigError, DataError
from proxies.documents.text import split_text

_TEXT_SUFFIXES = (".txt", ".md", ".txt.gz", ".md.gz")
_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
_PARQUET_SUFFIXES = (".parquet",)


def iter_documents(folder: Path, *, max_doc_bytes: int = 16_000) -> Iterator[str]:
    """Yield the documents of one domain folder, files in sorted order, subfolders included.

    ``.txt``/``.md`` files are one text each; ``.jsonl`` lines and ``.parquet`` rows one text
    each. Any text longer than ``max_doc_bytes`` UTF-8 bytes is split at paragraph boundaries
    (then line boundaries) into documents of at most about that size. Names starting with
    ``.`` or ``_`` (markers, temp files) are ignored. Raises DataError naming the path when
    the folder is missing or has no supported file, or a file is not valid UTF-8, not valid
    JSON Lines, or lacks the ``text`` field/column.
    """
    if max_doc_bytes < 256:
        raise ConfigError(f"max_doc_bytes must be >= 256, got {max_doc_bytes}")
    folder = Path(folder)
    files = supported_files(folder)
    for path in files:
        for text in _read_texts(path):
            yield from split_text(text, max_bytes=max_doc_bytes)


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


def _read_texts(path: Path) -> Iterator[str]:
    kind = _kind(path)
    if kind == "parquet":
        yield from _read_parquet(path)
        return
    text = _decode(path)
    if kind == "text":
        yield text
    else:
        yield from _read_jsonl(path, text)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    where = ""
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from exc
        where = " of the decompressed content"
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not valid UTF-8 at byte offset {exc.start}{where} "
            f"(byte {data[exc.start : exc.start + 1]!r})"
        ) from exc


def _read_jsonl(path: Path, text: str) -> Iterator[str]:
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})"
            ) from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            got = type(record.get("text")).__name__ if isinstance(record, dict) else "not an object"
            raise DataError(
                f"{path}:{lineno}: expected an object with a string field 'text', got {got}"
            )
        yield record["text"]


def _read_parquet(path: Path) -> Iterator[str]:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    if "text" not in schema.names:
        raise DataError(f"{path}: Parquet file has no 'text' column (columns: {schema.names})")
    column = pq.read_table(path, columns=["text"]).column("text")
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise DataError(f"{path}: column 'text' must be a string column, got {column.type}")
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            raise DataError(f"{path}: column 'text' is null at row {row}")
        yield value
