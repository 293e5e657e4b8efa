"""The record of a document build (``manifest.json``): what was kept of each domain, and the
fingerprint of the cleaned content."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mixtures.errors import DataError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2


@dataclass(frozen=True)
class DomainStats:
    """What :func:`proxies.documents.prepare_documents` kept of one domain."""

    name: str
    n_train_docs: int
    n_val_docs: int
    train_bytes: int
    """UTF-8 bytes of the cleaned training documents."""
    val_bytes: int
    n_duplicates_removed: int
    """Exact duplicates dropped: within the domain, plus documents already kept by a domain
    earlier in sorted order."""
    n_files: int
    """Supported input files read from the domain folder."""
    truncated: bool
    """True when the byte cap dropped documents."""
    source_docs: int
    """Documents of the whole domain after cleaning and dedup, before the cap."""
    source_bytes: int
    """Their UTF-8 bytes: with the kept share's tokens per byte, the domain's true size."""


@dataclass(frozen=True)
class DocsManifest:
    """The record of one :func:`proxies.documents.prepare_documents` run, written last as
    ``manifest.json``."""

    domains: tuple[DomainStats, ...]
    fingerprint: str
    """sha256 hex of the cleaned content of every domain and split, in sorted domain order."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (``from_json`` reads it back)."""
        return {
            "version": MANIFEST_VERSION,
            "fingerprint": self.fingerprint,
            "domains": [asdict(d) for d in self.domains],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DocsManifest:
        """Validate and read a dict written by :meth:`to_json`; DataError when malformed."""
        if not isinstance(d, Mapping) or d.get("version") != MANIFEST_VERSION:
            got = d.get("version") if isinstance(d, Mapping) else type(d).__name__
            raise DataError(f"docs manifest: version must be {MANIFEST_VERSION}, got {got!r}")
        fingerprint = d.get("fingerprint")
        if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
            raise DataError(f"docs manifest: fingerprint must be sha256 hex, got {fingerprint!r}")
        raw = d.get("domains")
        if not isinstance(raw, list):
            raise DataError(f"docs manifest: 'domains' must be a list, got {type(raw).__name__}")
        return cls(
            domains=tuple(_stats_from_json(i, item) for i, item in enumerate(raw)),
            fingerprint=fingerprint,
        )


def _stats_from_json(index: int, item: Any) -> DomainStats:
    types = {
        "name": str,
        "n_train_docs": int,
        "n_val_docs": int,
        "train_bytes": int,
        "val_bytes": int,
        "n_duplicates_removed": int,
        "n_files": int,
        "truncated": bool,
        "source_docs": int,
        "source_bytes": int,
    }
    if not isinstance(item, Mapping) or set(item) != set(types):
        raise DataError(
            f"docs manifest: domains[{index}] must have exactly the fields "
            f"{sorted(types)}, got {sorted(item) if isinstance(item, Mapping) else item!r}"
        )
    for key, typ in types.items():
        value = item[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise DataError(
                f"docs manifest: domains[{index}].{key} must be {typ.__name__}, got {value!r}"
            )
    return DomainStats(**item)


def read_manifest(out_dir: Path) -> DocsManifest:
    """Read ``out_dir/manifest.json``; DataError when missing or malformed."""
    path = Path(out_dir) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: docs manifest not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: docs manifest is not valid JSON ({exc})") from exc
    return DocsManifest.from_json(data)
