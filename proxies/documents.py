"""Domain folders of text -> cleaned, deduplicated, capped train/val document shards.

A domain is a folder of ``.txt``/``.md`` (whole files), ``.jsonl`` (field ``"text"`` per line) or
``.parquet`` (column ``"text"``) files, ``.gz`` variants of the text and JSONL formats included.
:func:`prepare_documents` turns a mapping of such folders into ``<out>/<domain>/train.parquet`` and
``val.parquet`` plus ``<out>/manifest.json``, deterministically: the same inputs and seed give the
same bytes and the same fingerprint.

This module is pure (no Prefect); the flow layer calls it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mixtures.errors import ConfigError, DataError
from proxies.files import atomic_write_bytes

MIN_DOC_CHARS = 64
"""Documents shorter than this after cleaning are dropped: too short to carry domain signal
(headers, empty stubs) and they would only add separator tokens."""

MANIFEST_NAME = "manifest.json"
#: Written after the manifest: a stamp of the inputs (file names, sizes, mtimes, options) the
#: shards were built from, so an unchanged rerun reads the manifest instead of every document.
INPUTS_NAME = "inputs.json"
MANIFEST_VERSION = 1
SPLITS = ("train", "val")

_DOMAIN_NAME = re.compile(r"[a-z0-9_]+")
# Controls other than \t (\x09) and \n (\x0a); \r is normalized before this runs. C1 controls
# (\x80-\x9f) are mojibake in practice, never meaningful text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANK_RUN = re.compile(r"\n{4,}")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_TEXT_SUFFIXES = (".txt", ".md", ".txt.gz", ".md.gz")
_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")
_PARQUET_SUFFIXES = (".parquet",)


@dataclass(frozen=True)
class DomainStats:
    """What :func:`prepare_documents` kept of one domain."""

    name: str
    n_train_docs: int
    n_val_docs: int
    train_bytes: int
    """UTF-8 bytes of the cleaned training documents."""
    val_bytes: int
    n_duplicates_removed: int
    """Exact duplicates dropped: within the domain, plus documents already kept by a domain
    earlier in sorted order."""
    n_files: int
    """Supported input files read from the domain folder."""
    truncated: bool
    """True when the byte cap dropped documents."""


@dataclass(frozen=True)
class DocsManifest:
    """The record of one :func:`prepare_documents` run, written last as ``manifest.json``."""

    domains: tuple[DomainStats, ...]
    fingerprint: str
    """sha256 hex of the cleaned content of every domain and split, in sorted domain order."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (``from_json`` reads it back)."""
        return {
            "version": MANIFEST_VERSION,
            "fingerprint": self.fingerprint,
            "domains": [asdict(d) for d in self.domains],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DocsManifest:
        """Validate and read a dict written by :meth:`to_json`; DataError when malformed."""
        if not isinstance(d, Mapping) or d.get("version") != MANIFEST_VERSION:
            got = d.get("version") if isinstance(d, Mapping) else type(d).__name__
            raise DataError(f"docs manifest: version must be {MANIFEST_VERSION}, got {got!r}")
        fingerprint = d.get("fingerprint")
        if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
            raise DataError(f"docs manifest: fingerprint must be sha256 hex, got {fingerprint!r}")
        raw = d.get("domains")
        if not isinstance(raw, list):
            raise DataError(f"docs manifest: 'domains' must be a list, got {type(raw).__name__}")
        return cls(
            domains=tuple(_stats_from_json(i, item) for i, item in enumerate(raw)),
            fingerprint=fingerprint,
        )


def _stats_from_json(index: int, item: Any) -> DomainStats:
    types = {
        "name": str,
        "n_train_docs": int,
        "n_val_docs": int,
        "train_bytes": int,
        "val_bytes": int,
        "n_duplicates_removed": int,
        "n_files": int,
        "truncated": bool,
    }
    if not isinstance(item, Mapping) or set(item) != set(types):
        raise DataError(
            f"docs manifest: domains[{index}] must have exactly the fields "
            f"{sorted(types)}, got {sorted(item) if isinstance(item, Mapping) else item!r}"
        )
    for key, typ in types.items():
        value = item[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise DataError(
                f"docs manifest: domains[{index}].{key} must be {typ.__name__}, got {value!r}"
            )
    return DomainStats(**item)


# ---------------------------------------------------------------- reading


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
    files = _supported_files(folder)
    for path in files:
        for text in _read_texts(path):
            yield from split_text(text, max_bytes=max_doc_bytes)


def _supported_files(folder: Path) -> list[Path]:
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


def split_text(text: str, *, max_bytes: int) -> list[str]:
    """Split ``text`` into pieces of at most about ``max_bytes`` UTF-8 bytes.

    Cuts at paragraph breaks (blank lines) when possible, else at line breaks, and only cuts
    inside a line that alone exceeds the limit. Short texts come back unchanged.
    """
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for unit in _units(text, max_bytes):
        n = len(unit.encode("utf-8")) + 2
        if current and size + n > max_bytes:
            pieces.append("\n\n".join(current))
            current, size = [], 0
        current.append(unit)
        size += n
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def _units(text: str, max_bytes: int) -> Iterator[str]:
    """Paragraphs no larger than ``max_bytes``: oversized ones broken at lines, then chars."""
    for paragraph in _PARAGRAPH_BREAK.split(text):
        if len(paragraph.encode("utf-8")) <= max_bytes:
            yield paragraph
            continue
        block: list[str] = []
        size = 0
        for line in _hard_lines(paragraph, max_bytes):
            n = len(line.encode("utf-8")) + 1
            if block and size + n > max_bytes:
                yield "\n".join(block)
                block, size = [], 0
            block.append(line)
            size += n
        if block:
            yield "\n".join(block)


def _hard_lines(paragraph: str, max_bytes: int) -> Iterator[str]:
    for line in paragraph.split("\n"):
        data = line.encode("utf-8")
        while len(data) > max_bytes:
            # Step back to a UTF-8 lead byte so no character is cut in two.
            cut = max_bytes
            while cut > 0 and (data[cut] & 0xC0) == 0x80:
                cut -= 1
            yield data[:cut].decode("utf-8")
            data = data[cut:]
        yield data.decode("utf-8")


# ---------------------------------------------------------------- cleaning


def clean_text(text: str) -> str:
    """Normalize one document.

    Newlines become ``\\n``; control characters other than ``\\n`` and ``\\t`` (and a stray
    BOM) are removed; trailing spaces on each line are dropped; runs of more than two blank
    lines become two; leading and trailing blank lines go.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_RUN.sub("\n\n\n", text)
    return text.strip("\n")


# ---------------------------------------------------------------- preparing


@dataclass(frozen=True)
class _Domain:
    """One domain after cleaning, dedup and capping, before writing."""

    name: str
    train: list[str]
    val: list[str]
    n_duplicates: int
    n_files: int
    truncated: bool

    def stats(self) -> DomainStats:
        return DomainStats(
            name=self.name,
            n_train_docs=len(self.train),
            n_val_docs=len(self.val),
            train_bytes=_nbytes(self.train),
            val_bytes=_nbytes(self.val),
            n_duplicates_removed=self.n_duplicates,
            n_files=self.n_files,
            truncated=self.truncated,
        )


def prepare_documents(
    domain_dirs: Mapping[str, Path],
    out_dir: Path,
    *,
    cap_bytes: int,
    val_fraction: float,
    seed: int,
    min_domains: int = 2,
    max_doc_bytes: int = 16_000,
) -> DocsManifest:
    """Clean, dedup, shuffle, cap and split each domain; write Parquet shards and a manifest.

    For each domain (sorted by name): documents are read with :func:`iter_documents`, cleaned
    with :func:`clean_text`, dropped when shorter than ``MIN_DOC_CHARS``, deduplicated by
    exact content (within the domain, and against documents kept by domains earlier in sorted
    order), shuffled with a generator seeded by ``(seed, domain name)``, capped at
    ``cap_bytes`` (train + val), and split by document: ``val_fraction`` of the documents, at
    least one, go to validation. Writes ``out_dir/<domain>/{train,val}.parquet`` (one Utf8
    column ``text``) atomically, then ``out_dir/manifest.json``.

    Raises ConfigError for a bad domain name or option, and DataError listing every failed
    domain with its reason when fewer than ``min_domains`` domains are usable (nothing is
    written then). Shards of a domain that failed are removed so no stale data remains.
    """
    _validate_options(
        domain_dirs, cap_bytes=cap_bytes, val_fraction=val_fraction, min_domains=min_domains
    )
    out_dir = Path(out_dir)
    stamp = _input_stamp(
        domain_dirs,
        cap_bytes=cap_bytes,
        val_fraction=val_fraction,
        seed=seed,
        min_domains=min_domains,
        max_doc_bytes=max_doc_bytes,
    )
    reused = _reuse(out_dir, stamp)
    if reused is not None:
        return reused
    (out_dir / INPUTS_NAME).unlink(missing_ok=True)  # stale until the new manifest is written
    kept: list[_Domain] = []
    failures: dict[str, str] = {}
    seen: set[bytes] = set()
    for name in sorted(domain_dirs):
        try:
            domain = _prepare_domain(
                name,
                Path(domain_dirs[name]),
                seen,
                cap_bytes=cap_bytes,
                val_fraction=val_fraction,
                seed=seed,
                max_doc_bytes=max_doc_bytes,
            )
        except DataError as exc:
            failures[name] = str(exc)
            continue
        seen.update(_digest(t) for t in domain.train + domain.val)
        kept.append(domain)
    if len(kept) < min_domains:
        listing = "; ".join(f"{n}: {r}" for n, r in failures.items()) or "none failed"
        raise DataError(
            f"only {len(kept)} usable domain(s) of {len(domain_dirs)}, need at least "
            f"{min_domains}; failed: {listing}"
        )
    manifest = _write_all(out_dir, kept, failed=sorted(failures))
    if stamp is not None:
        atomic_write_bytes(out_dir / INPUTS_NAME, json.dumps({"stamp": stamp}).encode("utf-8"))
    return manifest


def _input_stamp(domain_dirs: Mapping[str, Path], **options: Any) -> str | None:
    """sha256 of the options and of every input file's path, size and mtime (None when a
    folder cannot be listed: then nothing is reused and the build reports the problem)."""
    h = hashlib.sha256(json.dumps({**options, "v": MANIFEST_VERSION}, sort_keys=True).encode())
    try:
        for name in sorted(domain_dirs):
            folder = Path(domain_dirs[name]).resolve()
            h.update(f"\0{name}\0{folder}\0".encode())
            for f in _supported_files(folder):
                st = f.stat()
                h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    except (OSError, DataError):
        return None
    return h.hexdigest()


def _reuse(out_dir: Path, stamp: str | None) -> DocsManifest | None:
    """The manifest of an earlier build from the same inputs, if it and its shards are there."""
    if stamp is None:
        return None
    try:
        if json.loads((out_dir / INPUTS_NAME).read_text())["stamp"] != stamp:
            return None
        manifest = read_manifest(out_dir)
    except (OSError, ValueError, KeyError, TypeError, DataError):
        return None
    shards = [out_dir / d.name / f"{split}.parquet" for d in manifest.domains for split in SPLITS]
    return manifest if all(p.is_file() for p in shards) else None


def _validate_options(
    domain_dirs: Mapping[str, Path], *, cap_bytes: int, val_fraction: float, min_domains: int
) -> None:
    for name in domain_dirs:
        if not isinstance(name, str) or not _DOMAIN_NAME.fullmatch(name):
            raise ConfigError(f"domain name {name!r} is invalid: expected [a-z0-9_]+")
    if cap_bytes <= 0:
        raise ConfigError(f"cap_bytes must be > 0, got {cap_bytes}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if min_domains < 1:
        raise ConfigError(f"min_domains must be >= 1, got {min_domains}")


def _prepare_domain(
    name: str,
    folder: Path,
    seen: set[bytes],
    *,
    cap_bytes: int,
    val_fraction: float,
    seed: int,
    max_doc_bytes: int,
) -> _Domain:
    n_files = len(_supported_files(folder))
    docs, n_duplicates = _unique_clean_docs(folder, seen, max_doc_bytes=max_doc_bytes)
    if len(docs) < 2:
        raise DataError(
            f"domain folder {folder} has {len(docs)} document(s) of at least "
            f"{MIN_DOC_CHARS} characters after cleaning and dedup, need 2 "
            f"(one for train, one for val)"
        )
    # Seeded per domain so adding or removing another domain leaves this one's order alone.
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    order = rng.permutation(len(docs))
    capped = _cap([docs[i] for i in order], cap_bytes)
    if len(capped) < 2:
        raise DataError(
            f"domain {name}: cap_bytes={cap_bytes} keeps {len(capped)} document(s), "
            f"need 2 (one for train, one for val)"
        )
    n_val = min(max(1, round(val_fraction * len(capped))), len(capped) - 1)
    return _Domain(
        name=name,
        train=capped[n_val:],
        val=capped[:n_val],
        n_duplicates=n_duplicates,
        n_files=n_files,
        truncated=len(capped) < len(docs),
    )


def _unique_clean_docs(
    folder: Path, seen: set[bytes], *, max_doc_bytes: int
) -> tuple[list[str], int]:
    docs: list[str] = []
    local: set[bytes] = set()
    n_duplicates = 0
    for raw in iter_documents(folder, max_doc_bytes=max_doc_bytes):
        text = clean_text(raw)
        if len(text) < MIN_DOC_CHARS:
            continue
        digest = _digest(text)
        if digest in local or digest in seen:
            n_duplicates += 1
            continue
        local.add(digest)
        docs.append(text)
    return docs, n_duplicates


def _cap(docs: list[str], cap_bytes: int) -> list[str]:
    """The longest prefix of ``docs`` whose UTF-8 size stays within ``cap_bytes``."""
    total = 0
    for i, text in enumerate(docs):
        total += len(text.encode("utf-8"))
        if total > cap_bytes:
            return docs[:i]
    return docs


def _write_all(out_dir: Path, kept: list[_Domain], *, failed: list[str]) -> DocsManifest:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in failed:
        for split in SPLITS:
            (out_dir / name / f"{split}.parquet").unlink(missing_ok=True)
    for domain in kept:
        _write_parquet(out_dir / domain.name / "train.parquet", domain.train)
        _write_parquet(out_dir / domain.name / "val.parquet", domain.val)
    manifest = DocsManifest(domains=tuple(d.stats() for d in kept), fingerprint=_fingerprint(kept))
    atomic_write_bytes(
        out_dir / MANIFEST_NAME, (json.dumps(manifest.to_json(), indent=2) + "\n").encode("utf-8")
    )
    return manifest


def _write_parquet(path: Path, texts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"text": pa.array(texts, type=pa.string())})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _fingerprint(kept: list[_Domain]) -> str:
    h = hashlib.sha256()
    for domain in sorted(kept, key=lambda d: d.name):
        for split, texts in (("train", domain.train), ("val", domain.val)):
            h.update(f"{domain.name}\0{split}\0{len(texts)}\0".encode())
            for text in texts:
                data = text.encode("utf-8")
                # Length prefix: ["ab", "c"] and ["a", "bc"] must not hash alike.
                h.update(len(data).to_bytes(8, "little"))
                h.update(data)
    return h.hexdigest()


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _nbytes(texts: list[str]) -> int:
    return sum(len(t.encode("utf-8")) for t in texts)


def read_manifest(out_dir: Path) -> DocsManifest:
    """Read ``out_dir/manifest.json``; DataError when missing or malformed."""
    path = Path(out_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: docs manifest not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: docs manifest is not valid JSON ({exc})") from exc
    return DocsManifest.from_json(data)
