"""Building the raw domain folders: fetch each domain's packages, extract its text within the
cap, and publish the folder whole with its provenance record and finished marker."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mixtures.errors import ConfigError, DataError
from proxies.sources.common import SUCCESS_MARKER, SourceUnavailable, run
from proxies.sources.context import Context
from proxies.sources.fetch import Fetcher
from proxies.sources.registry import DomainSpec, domain_specs

SOURCE_RECORD = "_SOURCE.json"
"""Provenance record of a finished domain folder: packages, versions, parts, bytes, seconds."""


@dataclass(frozen=True)
class SourceResult:
    """The outcome of building one domain folder."""

    domain: str
    ok: bool
    path: Path | None
    """``raw_dir/<domain>`` when ok, else None."""
    bytes: int
    """UTF-8 bytes of text written (or found, when the domain was already built)."""
    files: int
    """Text files in the domain folder."""
    reason: str
    """Why the domain failed, or a short note ("built", "already built")."""


def build_sources(
    raw_dir: Path,
    *,
    domains: Sequence[str],
    cap_bytes: int,
    install: bool,
    log: Callable[[str], None] = print,
) -> list[SourceResult]:
    """Build ``raw_dir/<domain>/`` for each requested domain; one result per domain, in order.

    A domain whose folder has the ``_SUCCESS`` marker is skipped. Otherwise its packages are
    fetched (``install=True``) or looked up (already downloaded, or installed on the system),
    its text is extracted into JSON Lines files capped at about ``cap_bytes``, and the marker
    is written; the folder appears whole or not at all (built in ``raw_dir/_tmp`` and renamed).
    A domain that cannot be built gives ``ok=False`` with the reason; the others go on.
    Raises ConfigError for an unknown domain name or a non-positive cap.
    """
    specs = domain_specs()
    unknown = [d for d in domains if d not in specs]
    if unknown:
        raise ConfigError(f"unknown corpus domain(s) {unknown}; known: {sorted(specs)}")
    if cap_bytes <= 0:
        raise ConfigError(f"cap_bytes must be > 0, got {cap_bytes}")
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    done = {d: _existing_result(raw_dir, d) for d in domains if _is_built(raw_dir, d)}
    for d in done:
        log(f"[sources] {d}: already built, skipped")
    todo = [specs[d] for d in dict.fromkeys(domains) if d not in done]
    # Packages are fetched in one pool while domains are extracted in another, each domain
    # starting once its own packages are there: the slow manpages domain first, so that its
    # rendering overlaps the downloads, then the domains that need no download.
    with ThreadPoolExecutor(max_workers=4) as fetch_pool, ThreadPoolExecutor(3) as build_pool:
        fetched = Fetcher(raw_dir, install=install, log=log).start(todo, fetch_pool)
        order = sorted(todo, key=lambda s: (not s.slow, len(s.debs) + len(s.pips) > 0))
        futures = {
            s.name: build_pool.submit(_build_domain, raw_dir, s, fetched, cap_bytes, log)
            for s in order
        }
        built = {name: f.result() for name, f in futures.items()}
    with contextlib.suppress(OSError):  # left only when another build is still running
        (raw_dir / "_tmp").rmdir()
    return [done[d] if d in done else built[d] for d in domains]


def _is_built(raw_dir: Path, domain: str) -> bool:
    return (raw_dir / domain / SUCCESS_MARKER).is_file()


def _existing_result(raw_dir: Path, domain: str) -> SourceResult:
    folder = raw_dir / domain
    try:
        n_bytes = int(json.loads((folder / SOURCE_RECORD).read_text(encoding="utf-8"))["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        # A folder finished by hand, without a readable record: count what is there.
        n_bytes = sum(f.stat().st_size for f in _text_files(folder))
    return SourceResult(
        domain=domain,
        ok=True,
        path=folder,
        bytes=n_bytes,
        files=len(_text_files(folder)),
        reason="already built",
    )


def _text_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".jsonl")


def _build_domain(
    raw_dir: Path,
    spec: DomainSpec,
    fetched: Mapping[str, Future[Path | str]],
    cap_bytes: int,
    log: Callable[[str], None],
) -> SourceResult:
    start = time.monotonic()
    tmp = raw_dir / "_tmp" / f"{spec.name}-{os.getpid()}"
    try:
        roots = _resolve_inputs(spec, fetched)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ctx = Context(name=spec.name, out=tmp, cap_bytes=cap_bytes, roots=roots)
        spec.extract(ctx)
        if ctx.total_bytes == 0:
            raise SourceUnavailable(f"{spec.name}: extraction produced no text")
    except (
        DataError,
        OSError,
        ValueError,
        KeyError,
        subprocess.SubprocessError,
        zipfile.BadZipFile,
        tarfile.TarError,
    ) as exc:  # a missing, corrupt or unexpected package: this domain fails, the others go on
        shutil.rmtree(tmp, ignore_errors=True)
        reason = str(exc) if isinstance(exc, DataError) else f"{spec.name}: {exc!r}"
        log(f"[sources] {spec.name}: FAILED: {reason}")
        return SourceResult(spec.name, False, None, 0, 0, reason)
    seconds = time.monotonic() - start
    record = {
        "domain": spec.name,
        "cap_bytes": cap_bytes,
        "bytes": ctx.total_bytes,
        "seconds": round(seconds, 2),
        "packages": {key: _root_version(key, root) for key, root in ctx.roots.items()},
        "parts": ctx.parts,
    }
    (tmp / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (tmp / SUCCESS_MARKER).write_text("", encoding="utf-8")
    final = raw_dir / spec.name
    shutil.rmtree(final, ignore_errors=True)  # an unfinished folder from an earlier crash
    os.replace(tmp, final)
    files = _text_files(final)
    log(
        f"[sources] {spec.name}: {ctx.total_bytes / 1e6:.2f} MB in {len(files)} file(s), "
        f"{seconds:.1f} s"
    )
    return SourceResult(spec.name, True, final, ctx.total_bytes, len(files), "built")


def _resolve_inputs(spec: DomainSpec, fetched: Mapping[str, Future[Path | str]]) -> dict[str, Path]:
    """Wait for each package of the spec; its local root, or SourceUnavailable with why not."""
    for command in spec.commands:
        if shutil.which(command) is None:
            raise SourceUnavailable(f"{spec.name}: command {command!r} not found on PATH")
    roots: dict[str, Path] = {}
    for key in [d.package for d in spec.debs] + [p.requirement for p in spec.pips]:
        got = fetched[key].result()
        if not isinstance(got, Path):
            raise SourceUnavailable(f"{spec.name}: {key} unavailable: {got}")
        roots[key] = got
    return roots


def _root_version(key: str, root: Path) -> str:
    """The version behind a package root: the unpacked .deb's, the installed one's, or the pin."""
    if root == Path("/"):
        proc = run(["dpkg-query", "-W", "-f=${Version}", key], check=False)
        return f"{proc.stdout.strip()} (installed)"
    marker = root.parent / SUCCESS_MARKER if root.name == "root" else root / SUCCESS_MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else "unknown"
