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
    # The venv's own transformers (pinned by the project): no download, same files as the wheel.
    files = files_under(package_dir("transformers"), (".py",), skip_dirs=("__pycache__",))
    ctx.write_part(
        "transformers",
        f"transformers=={dist_version('transformers')} (venv)",
        read_files(files, prefix="transformers/"),
    )


def extract_code_cpp(ctx: Context) -> None:
    # The headers shipped in the torch wheel, as installed in the venv.
    include = package_dir("torch") / "include"
    files = files_under(include, (".h", ".hpp", ".hh", ".cuh"))
    ctx.write_part(
        "torch_include",
        f"torch=={dist_version('torch')} (venv) include/",
        read_files(files, prefix="torch/include/"),
    )


def extract_py_stdlib(ctx: Context) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = files_under(
        stdlib,
        (".py",),
        skip_dirs=("site-packages", "dist-packages", "__pycache__", "test", "tests", "idlelib"),
    )
    ctx.write_part(
        "stdlib",
        f"Python {_python_version()} standard library .py",
        read_files(files, prefix="stdlib/"),
    )


def extract_py_headers(ctx: Context) -> None:
    include = Path(sysconfig.get_paths()["include"])
    ctx.write_part(
        "python_include",
        f"Python {_python_version()} C headers",
        read_files(files_under(include, (".h",)), prefix="include/"),
    )


def extract_py_licenses(ctx: Context) -> None:
    files: dict[str, Path] = {}
    for info in _dist_infos():
        for path in sorted(info.rglob("*")):
            if path.is_file() and re.match(r"(LICEN[CS]E|COPYING|NOTICE)", path.name, re.I):
                files[f"{info.name}/{path.relative_to(info).as_posix()}"] = path
    ctx.write_part("dist_info_licenses", "licence files of the venv's *.dist-info", read_files(files))


def extract_py_metadata(ctx: Context) -> None:
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
