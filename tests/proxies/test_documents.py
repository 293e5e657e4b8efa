"""Reading domain folders (whole files, byte ranges, row groups, compressed, bounded), cleaning
and splitting one text."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mixtures.errors import DataError
from proxies.documents import (
    clean_text,
    iter_documents,
    iter_unit_texts,
    plan_units,
    split_text,
)


def doc(tag: str, n: int = 3) -> str:
    """A document comfortably above the minimum length, unique per tag."""
    return " ".join(f"{tag} sentence number {i} of the test corpus." for i in range(n))


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


# ---------------------------------------------------------------- iter_documents


def test_reads_every_format_in_sorted_order_recursively(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("text file", encoding="utf-8")
    (tmp_path / "a.md").write_text("markdown file", encoding="utf-8")
    write_jsonl(tmp_path / "c.jsonl", ["json one", "json two"])
    with gzip.open(tmp_path / "d.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "gz json"}) + "\n")
    with gzip.open(tmp_path / "e.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("gz text")
    pq.write_table(pa.table({"text": ["parquet row"], "id": [1]}), tmp_path / "f.parquet")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "g.txt").write_text("nested", encoding="utf-8")
    (tmp_path / "_SUCCESS").write_text("", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "notes.csv").write_text("ignored", encoding="utf-8")

    got = list(iter_documents(tmp_path))

    assert got == [
        "markdown file",
        "text file",
        "json one",
        "json two",
        "gz json",
        "gz text",
        "parquet row",
        "nested",
    ]


def test_long_text_is_split_at_paragraphs(tmp_path: Path) -> None:
    paragraphs = [f"paragraph {i} " + "x" * 300 for i in range(10)]
    (tmp_path / "long.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")

    got = list(iter_documents(tmp_path, max_doc_bytes=1000))

    assert len(got) == 4  # three paragraphs (~315 bytes each) fit in 1000 bytes
    assert all(len(d.encode()) <= 1000 for d in got)
    assert "\n\n".join(got) == "\n\n".join(paragraphs)  # nothing lost, no cut in a paragraph


def test_split_text_cuts_huge_lines_without_breaking_characters() -> None:
    text = "é" * 1000  # 2000 bytes, one line
    pieces = split_text(text, max_bytes=300)
    assert all(len(p.encode()) <= 300 for p in pieces)
    assert "".join(pieces) == text


@given(
    text=st.text(alphabet=st.sampled_from("ab é\n\t€"), max_size=400),
    max_bytes=st.integers(min_value=8, max_value=64),
)
def test_split_text_bounds_size_and_loses_nothing(text: str, max_bytes: int) -> None:
    pieces = split_text(text, max_bytes=max_bytes)
    if len(text.encode()) > max_bytes:
        assert all(len(p.encode()) <= max_bytes for p in pieces)
    # Only the whitespace of the paragraph/line breaks cut at may change.
    assert "".join(re.sub(r"\s", "", p) for p in pieces) == re.sub(r"\s", "", text)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.*does not exist"):
        list(iter_documents(tmp_path / "nope"))


def test_folder_without_supported_files(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b", encoding="utf-8")
    with pytest.raises(DataError, match=f"{tmp_path}.*no supported files"):
        list(iter_documents(tmp_path))


def test_undecodable_utf8_names_file_and_offset(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"hello \xff world")
    with pytest.raises(DataError, match=r"bad\.txt.*UTF-8 at byte offset 6"):
        list(iter_documents(tmp_path))


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"text": "ok"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.jsonl:2: invalid JSON"):
        list(iter_documents(tmp_path))


def test_jsonl_line_without_text(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.jsonl:1: .*'text'"):
        list(iter_documents(tmp_path))


def test_parquet_without_text_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"body": ["a"]}), tmp_path / "x.parquet")
    with pytest.raises(DataError, match=r"x\.parquet: Parquet file has no 'text' column"):
        list(iter_documents(tmp_path))


# ---------------------------------------------------------------- cleaning


def test_clean_text_normalizes() -> None:
    raw = "\n\nline one  \r\nline\x00 two\x07\tend\r\n\n\n\n\n\nlast\x85 line\n\n"
    assert clean_text(raw) == "line one\nline two\tend\n\n\nlast line"


# ---------------------------------------------------------------- streamed, bounded reading


def test_zstd_files_are_read(tmp_path: Path) -> None:
    import zstandard

    z = zstandard.ZstdCompressor()
    (tmp_path / "a.jsonl.zst").write_bytes(z.compress(b'{"text": "zst json"}\n'))
    (tmp_path / "b.md.zst").write_bytes(z.compress("zst markdown é".encode()))
    assert list(iter_documents(tmp_path)) == ["zst json", "zst markdown é"]


def test_jsonl_byte_ranges_read_every_line_once(tmp_path: Path) -> None:
    texts = [f"line {i} " + "x" * (i * 37 % 301) for i in range(400)]
    write_jsonl(tmp_path / "big.jsonl", texts)
    units = plan_units(tmp_path, unit_bytes=1000)
    assert len(units) > 50 and all(u.stop is not None for u in units)
    got = [t for u in units for t in iter_unit_texts(u)]
    assert got == texts


def test_parquet_row_group_ranges_read_every_row_once(tmp_path: Path) -> None:
    texts = [f"row {i} " + "y" * 200 for i in range(300)]
    pq.write_table(pa.table({"text": texts}), tmp_path / "t.parquet", row_group_size=20)
    units = plan_units(tmp_path, unit_bytes=2000)
    assert len(units) > 3
    assert [t for u in units for t in iter_unit_texts(u)] == texts


def test_a_compressed_text_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "bomb.txt.gz", "wb") as fh:
        fh.write(b"a" * 3_000_000)  # one line, 3 MB, compresses to a few KB
    assert (tmp_path / "bomb.txt.gz").stat().st_size < 20_000
    with pytest.raises(DataError, match=r"bomb\.txt\.gz: one text larger than 1,000,000 bytes"):
        list(iter_documents(tmp_path, max_text_bytes=1_000_000))


def test_a_json_line_over_the_limit_names_the_line(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "x.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "ok"}) + "\n" + json.dumps({"text": "b" * 5000}) + "\n")
    with pytest.raises(DataError, match=r"x\.jsonl\.gz:2: a line longer than 1,000 bytes"):
        list(iter_documents(tmp_path, max_text_bytes=1000))


def test_one_huge_line_splits_into_bounded_pieces() -> None:
    text = "ab€" * 400_000  # 2 MB on one line
    pieces = split_text(text, max_bytes=1000)
    assert len(pieces) >= 2000 and all(len(p.encode()) <= 1000 for p in pieces)
    assert "".join(pieces) == text
