"""The prepare step: clean, dedup, shuffle, cap and split every domain into Parquet shards,
then write the manifest. Same inputs and seed give the same bytes and the same fingerprint."""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mixtures.errors import ConfigError, DataError
from mixtures.io import atomic_path, atomic_write_bytes
from proxies.documents.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    DocsManifest,
    DomainStats,
    read_manifest,
)
from proxies.documents.reading import iter_documents, supported_files
from proxies.documents.text import clean_text

MIN_DOC_CHARS = 64
"""Documents shorter than this after cleaning are dropped: too short to carry domain signal
(headers, empty stubs) and they would only add separator tokens."""

#: Written after the manifest: a stamp of the inputs (file names, sizes, mtimes, options) the
#: shards were built from, so an unchanged rerun reads the manifest instead of every document.
INPUTS_NAME = "inputs.json"
SPLITS = ("train", "val")

_DOMAIN_NAME = re.compile(r"[a-z0-9_]+")


@dataclass(frozen=True)
class _Domain:
    """One domain after cleaning, dedup and capping, before writing."""

    name: str
    train: list[str]
    val: list[str]
    n_duplicates: int
    n_files: int
    truncated: bool
    source_docs: int
    source_bytes: int

    def stats(self) -> DomainStats:
        """The manifest's record of this domain."""
        return DomainStats(
            name=self.name,
            n_train_docs=len(self.train),
            n_val_docs=len(self.val),
            train_bytes=_nbytes(self.train),
            val_bytes=_nbytes(self.val),
            n_duplicates_removed=self.n_duplicates,
            n_files=self.n_files,
            truncated=self.truncated,
            source_docs=self.source_docs,
            source_bytes=self.source_bytes,
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
            for f in supported_files(folder):
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
    n_files = len(supported_files(folder))
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
        source_docs=len(docs),
        source_bytes=_nbytes(docs),
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
    table = pa.table({"text": pa.array(texts, type=pa.string())})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


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
