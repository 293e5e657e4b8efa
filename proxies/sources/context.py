"""What an extractor works with: a writer that keeps a domain within its byte cap, and helpers
that pick a package's files in a deterministic, package-wide order."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxies.documents.text import split_text
from proxies.sources.common import SourceUnavailable

MIN_TAIL_BYTES = 2_000
"""A document that does not fit is cut to fit only if at least this much room is left."""


@dataclass
class Context:
    """Where a domain writes, how much it may write, and the roots of its packages."""

    name: str
    out: Path
    cap_bytes: int
    roots: dict[str, Path]
    total_bytes: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)

    def write_parts(self, parts: Sequence[tuple[str, str, Iterable[tuple[str, str]]]]) -> None:
        """Write ``(part name, provenance note, documents)`` parts, sharing the cap evenly.

        Each part gets an equal share of what is left, so a small part leaves its unused share
        to the parts after it. Documents are ``(id, text)`` pairs; iteration stops (no more
        files read or pages rendered) once the part's share is reached.
        """
        for i, (part, note, docs) in enumerate(parts):
            share = (self.cap_bytes - self.total_bytes) // (len(parts) - i)
            n_docs, n_bytes = self._write_part(part, docs, share)
            self.total_bytes += n_bytes
            self.parts.append({"part": part, "source": note, "documents": n_docs, "bytes": n_bytes})

    def write_part(self, part: str, note: str, docs: Iterable[tuple[str, str]]) -> None:
        """Write a domain that has a single part: all of the cap is its share."""
        self.write_parts([(part, note, docs)])

    def _write_part(
        self, part: str, docs: Iterable[tuple[str, str]], share: int
    ) -> tuple[int, int]:
        n_docs = n_bytes = 0
        with (self.out / f"{part}.jsonl").open("w", encoding="utf-8") as fh:
            for doc_id, text in docs:
                room = share - n_bytes
                if room <= 0:
                    break
                if not text.strip():
                    continue
                size = len(text.encode("utf-8"))
                if size > room:
                    if room < MIN_TAIL_BYTES:
                        break
                    # The last document is cut at a paragraph boundary to fit: one 700 KB
                    # file must not double a small cap.
                    text = split_text(text, max_bytes=room)[0]
                    size = len(text.encode("utf-8"))
                fh.write(json.dumps({"text": text, "id": doc_id}, ensure_ascii=False) + "\n")
                n_docs += 1
                n_bytes += size
        return n_docs, n_bytes


def spread(keys: Iterable[str]) -> list[str]:
    """Keys in the order of their sha256: a deterministic, package-wide sample order."""
    return sorted(keys, key=lambda k: hashlib.sha256(k.encode("utf-8")).digest())


def files_under(
    root: Path, suffixes: tuple[str, ...], *, skip_dirs: tuple[str, ...] = ()
) -> dict[str, Path]:
    """Regular (non-symlink) files under ``root`` with one of ``suffixes``, by relative path;
    folders named in ``skip_dirs`` are not entered."""
    if not root.is_dir():
        raise SourceUnavailable(f"expected folder {root} does not exist")
    found = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip_dirs]
        for name in names:
            path = Path(folder, name)
            if name.endswith(suffixes) and not path.is_symlink() and path.is_file():
                found[path.relative_to(root).as_posix()] = path
    return found


def read_files(
    files: dict[str, Path], *, prefix: str = "", transform: Callable[[str], str] = lambda t: t
) -> Iterator[tuple[str, str]]:
    """Lazily read files in spread order; files that are not UTF-8 are skipped (binary junk)."""
    for key in spread(files):
        try:
            text = files[key].read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        yield prefix + key, transform(text)


def single_file(folder: Path, suffix: str) -> Path:
    """The one file in ``folder`` whose name ends with ``suffix`` (a downloaded wheel, sdist)."""
    files = sorted(p for p in folder.iterdir() if p.name.endswith(suffix))
    if len(files) != 1:
        raise SourceUnavailable(f"expected one *{suffix} in {folder}, found {len(files)}")
    return files[0]


def package_dir(module: str) -> Path:
    """Folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnavailable(f"Python package {module!r} is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations)))


def dist_version(dist: str) -> str:
    """The installed version of a distribution, or ``"unknown"``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
