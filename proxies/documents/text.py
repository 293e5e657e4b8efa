"""Text of one document: cleaning, and splitting an oversized text at paragraph boundaries."""

from __future__ import annotations

import re
from collections.abc import Iterator

# Controls other than \t (\x09) and \n (\x0a); \r is normalized before this runs. C1 controls
# (\x80-\x9f) are mojibake in practice, never meaningful text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_BLANK_RUN = re.compile(r"\n{4,}")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def clean_text(text: str) -> str:
    """Normalize one document.

    Newlines become ``\\n``; control characters other than ``\\n`` and ``\\t`` (and a stray
    BOM) are removed; trailing spaces on each line are dropped; runs of more than two blank
    lines become two; leading and trailing blank lines go.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    # per line rather than one multiline regex: several times faster on code
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    if "\n\n\n\n" in text:
        text = _BLANK_RUN.sub("\n\n\n", text)
    return text.strip("\n")


def split_text(text: str, *, max_bytes: int) -> list[str]:
    """Split ``text`` into pieces of at most about ``max_bytes`` UTF-8 bytes.

    Cuts at paragraph breaks (blank lines) when possible, else at line breaks, and only cuts
    inside a line that alone exceeds the limit. Short texts come back unchanged.
    """
    if len(text.encode("utf-8")) <= max_bytes:
        return [text]
    return list(_pack(_units(text, max_bytes), max_bytes, sep="\n\n"))


def _units(text: str, max_bytes: int) -> Iterator[str]:
    """Paragraphs no larger than ``max_bytes``: oversized ones broken at lines, then chars."""
    for paragraph in _PARAGRAPH_BREAK.split(text):
        if len(paragraph.encode("utf-8")) <= max_bytes:
            yield paragraph
        else:
            yield from _pack(_hard_lines(paragraph, max_bytes), max_bytes, sep="\n")


def _pack(pieces: Iterator[str], max_bytes: int, *, sep: str) -> Iterator[str]:
    """Join consecutive pieces with ``sep`` into blocks of at most about ``max_bytes`` bytes
    (each piece counted with its separator), starting a new block when the next does not fit."""
    block: list[str] = []
    size = 0
    for piece in pieces:
        n = len(piece.encode("utf-8")) + len(sep)
        if block and size + n > max_bytes:
            yield sep.join(block)
            block, size = [], 0
        block.append(piece)
        size += n
    if block:
        yield sep.join(block)


def _hard_lines(paragraph: str, max_bytes: int) -> Iterator[str]:
    """Lines of at most ``max_bytes`` bytes, in time linear in the paragraph's size."""
    for line in paragraph.split("\n"):
        data = line.encode("utf-8")
        pos = 0
        while len(data) - pos > max_bytes:
            # Step back to a UTF-8 lead byte so no character is cut in two.
            cut = pos + max_bytes
            while cut > pos and (data[cut] & 0xC0) == 0x80:
                cut -= 1
            yield data[pos:cut].decode("utf-8")
            pos = cut
        yield data[pos:].decode("utf-8")
