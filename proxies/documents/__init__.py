"""Reading domain folders of text, and cleaning and splitting one text.

A domain is a folder of ``.txt``/``.md`` (whole files), ``.jsonl`` (field ``"text"`` per line) or
``.parquet`` (column ``"text"``) files, gzip- and zstd-compressed variants of the text and JSON
Lines formats included. ``reading`` lists a folder's files and streams them as texts, in input
units a worker can take; ``text`` cleans a text and splits an oversized one. The preparation that
turns them into tokens is :mod:`proxies.prepare`.
"""

from proxies.documents.reading import InputUnit, iter_documents, iter_unit_texts, plan_units
from proxies.documents.text import clean_text, split_text

__all__ = [
    "InputUnit",
    "clean_text",
    "iter_documents",
    "iter_unit_texts",
    "plan_units",
    "split_text",
]
