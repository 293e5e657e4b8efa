"""The ``manpages`` domain: the English pages of Debian's manpages and manpages-dev, rendered
to plain text by groff. The slowest domain to extract, so it is started first."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from proxies.sources.common import CMD_TIMEOUT, RENDER_ENV, run
from proxies.sources.context import Context, files_under, spread

MAN_LINE = "78n"
"""Line length of rendered man pages: what ``man`` uses for an 80-column terminal."""


def extract_manpages(ctx: Context) -> None:
    """Sections 1-8 of manpages and manpages-dev, rendered, ``.so`` stubs left out."""
    pages: dict[str, Path] = {}
    for package in ("manpages", "manpages-dev"):
        root = ctx.roots[package]
        # On an installed system (root "/") keep only the pages of the pinned packages.
        owned = _installed_files(package) if root == Path("/") else None
        for key, path in files_under(root / "usr/share/man", (".gz",)).items():
            # Only the English sections (man1..man8); translations live in other folders.
            if re.fullmatch(r"man\d/[^/]+", key) and (owned is None or str(path) in owned):
                pages[key] = path
    ctx.write_part(
        "manpages",
        "Debian manpages, manpages-dev rendered by groff -mandoc -Tutf8",
        _render_manpages(pages),
    )


def _installed_files(package: str) -> frozenset[str]:
    proc = run(["dpkg-query", "-L", package])
    return frozenset(proc.stdout.splitlines())


def _render_manpages(pages: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """Render pages in spread order, two at a time, lazily (stops when the consumer stops)."""
    keys = [k for k in spread(pages) if not _is_so_stub(pages[k])]
    batch = 8
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i in range(0, len(keys), batch):
            chunk = keys[i : i + batch]
            rendered = pool.map(_render_man, [pages[k] for k in chunk])
            yield from zip(chunk, rendered, strict=True)


def _is_so_stub(path: Path) -> bool:
    """A page that only sources another page (``.so man3/x.3``) would duplicate it."""
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        head = fh.read(200).lstrip()
    return head.startswith(".so ") and head.count("\n") <= 2


def _render_man(path: Path) -> str:
    """Plain text of one page, 80 columns, as ``man -l`` shows it.

    groff is called directly (``-k`` preconv for UTF-8 input, ``-t`` tbl, ``-P-cbou`` no
    bold/underline overstrikes, so no ``col -b``): the same text as ``man -l | col -bx`` up to
    centring and blank lines, several times faster, and this is the slowest source.
    ``-rHY=0``: no hyphenation, so words are not cut across lines (``parti-/tion``) in the
    training text.
    """
    with gzip.open(path, "rb") as fh:
        source = fh.read()
    cmd = [
        "groff",
        "-k",
        "-t",
        "-mandoc",
        "-Tutf8",
        f"-rLL={MAN_LINE}",
        f"-rLT={MAN_LINE}",
        "-rHY=0",
        "-P-cbou",
    ]
    env = {**os.environ, **RENDER_ENV}
    proc = subprocess.run(
        cmd, input=source, capture_output=True, env=env, timeout=CMD_TIMEOUT, check=False
    )
    return proc.stdout.decode("utf-8", errors="replace")
