"""Domain folders of text -> cleaned, deduplicated, capped train/val document shards.

A domain is a folder of ``.txt``/``.md`` (whole files), ``.jsonl`` (field ``"text"`` per line) or
``.parquet`` (column ``"text"``) files, ``.gz`` variants of the text and JSONL formats included.
:func:`prepare_documents` turns a mapping of such folders into ``<out>/<domain>/train.parquet`` and
``val.parquet`` plus ``<out>/manifest.json``, deterministically: the same inputs and seed give the
same bytes and the same fingerprint.

Modules: ``reading`` (a domain folder's files as texts), ``text`` (cleaning and splitting one
text), ``prepare`` (the prepare step), ``manifest`` (its record). No Prefect here; the flow layer
calls it.
"""

from proxies.documents.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    DocsManifest,
    DomainStats,
    read_manifest,
)
from proxies.documents.prepare import INPUTS_NAME, MIN_DOC_CHARS, SPLITS, prepare_documents
from proxies.documents.reading import iter_documents
from proxies.documents.text import clean_text, split_text

__all__ = [
    "INPUTS_NAME",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "MIN_DOC_CHARS",
    "SPLITS",
    "DocsManifest",
    "DomainStats",
    "clean_text",
    "iter_documents",
    "prepare_documents",
    "read_manifest",
    "split_text",
]
