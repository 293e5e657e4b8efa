"""Domains read from the running Python and its venv: nothing to download.

``code_python`` and ``code_cpp`` belong to the default corpus (the pinned transformers and torch
wheels as installed); the ``py_*`` smoke domains are built in seconds, for tests and CI.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

from proxies.sources.common import SourceUnavailable
from proxies.sources.context import Context, dist_version, files_under, package_dir, read_files


def extract_code_python(ctx: Context) -> None:
    """Python source: the venv's own transformers (pinned by the project), no download,
    the same files as the wheel."""
    _write_tree(
        ctx,
        "transformers",
        f"transformers=={dist_version('transformers')} (venv)",
        package_dir("transformers"),
        (".py",),
        prefix="transformers/",
        skip_dirs=("__pycache__",),
    )


def extract_code_cpp(ctx: Context) -> None:
    """C++ source: the headers shipped in the torch wheel, as installed in the venv."""
    _write_tree(
        ctx,
        "torch_include",
        f"torch=={dist_version('torch')} (venv) include/",
        package_dir("torch") / "include",
        (".h", ".hpp", ".hh", ".cuh"),
        prefix="torch/include/",
    )


def extract_py_stdlib(ctx: Context) -> None:
    """The running Python's standard library modules, without its tests and IDLE."""
    _write_tree(
        ctx,
        "stdlib",
        f"Python {_python_version()} standard library .py",
        Path(sysconfig.get_paths()["stdlib"]),
        (".py",),
        prefix="stdlib/",
        skip_dirs=("site-packages", "dist-packages", "__pycache__", "test", "tests", "idlelib"),
    )


def extract_py_headers(ctx: Context) -> None:
    """The running Python's C headers."""
    _write_tree(
        ctx,
        "python_include",
        f"Python {_python_version()} C headers",
        Path(sysconfig.get_paths()["include"]),
        (".h",),
        prefix="include/",
    )


def extract_py_licenses(ctx: Context) -> None:
    """The licence and notice files of the venv's installed distributions."""
    files: dict[str, Path] = {}
    for info in _dist_infos():
        for path in sorted(info.rglob("*")):
            if path.is_file() and re.match(r"(LICEN[CS]E|COPYING|NOTICE)", path.name, re.I):
                files[f"{info.name}/{path.relative_to(info).as_posix()}"] = path
    ctx.write_part(
        "dist_info_licenses", "licence files of the venv's *.dist-info", read_files(files)
    )


def extract_py_metadata(ctx: Context) -> None:
    """The long descriptions (mostly READMEs) of the venv's installed distributions."""
    files = {
        f"{info.name}/METADATA": info / "METADATA"
        for info in _dist_infos()
        if (info / "METADATA").is_file()
    }
    ctx.write_part(
        "dist_info_descriptions",
        "descriptions in the venv's *.dist-info/METADATA",
        read_files(files, transform=metadata_description),
    )


def metadata_description(text: str) -> str:
    """The long description: the body after the header block (or the Description field)."""
    head, _, body = text.partition("\n\n")
    if body.strip():
        return body
    match = re.search(r"^Description: (.*(?:\n {8}.*|\n\|.*)*)", head, flags=re.MULTILINE)
    return re.sub(r"\n(?: {8}|\|)", "\n", match.group(1)) if match else ""


def _python_version() -> str:
    return sys.version.split()[0]


def _dist_infos() -> list[Path]:
    site = Path(sysconfig.get_paths()["purelib"])
    found = sorted(site.glob("*.dist-info"))
    if not found:
        raise SourceUnavailable(f"no *.dist-info folders in {site}")
    return found


def _write_tree(
    ctx: Context,
    part: str,
    note: str,
    root: Path,
    suffixes: tuple[str, ...],
    *,
    prefix: str,
    skip_dirs: tuple[str, ...] = (),
) -> None:
    """Write the files under ``root`` with one of ``suffixes`` as the domain's one part, each
    document's id its path prefixed with ``prefix``."""
    files = files_under(root, suffixes, skip_dirs=skip_dirs)
    ctx.write_part(part, note, read_files(files, prefix=prefix))
