"""Reading domain folders, cleaning, dedup, capping, splitting and the manifest."""

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

from mixtures.errors import ConfigError, DataError
from proxies.documents import (
    MIN_DOC_CHARS,
    DocsManifest,
    clean_text,
    iter_documents,
    prepare_documents,
    read_manifest,
    split_text,
)


def doc(tag: str, n: int = 3) -> str:
    """A document comfortably above the minimum length, unique per tag."""
    return " ".join(f"{tag} sentence number {i} of the test corpus." for i in range(n))


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def read_split(out: Path, domain: str, split: str) -> list[str]:
    table = pq.read_table(out / domain / f"{split}.parquet")
    assert table.schema.names == ["text"]
    assert table.schema.field("text").type == pa.string()
    return table.column("text").to_pylist()


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


# ---------------------------------------------------------------- prepare_documents


def make_corpus(root: Path) -> dict[str, Path]:
    write_jsonl(
        root / "alpha" / "a.jsonl",
        [doc(f"alpha{i}") for i in range(20)] + [doc("alpha3"), doc("alpha4"), "tiny"],
    )
    write_jsonl(root / "beta" / "b.jsonl", [doc(f"beta{i}") for i in range(10)] + [doc("alpha0")])
    return {"alpha": root / "alpha", "beta": root / "beta"}


def test_prepare_dedups_splits_and_writes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    m = prepare_documents(
        make_corpus(tmp_path / "raw"), out, cap_bytes=10**6, val_fraction=0.2, seed=0
    )

    stats = {s.name: s for s in m.domains}
    assert stats["alpha"].n_duplicates_removed == 2  # alpha3, alpha4 twice; "tiny" dropped
    assert stats["beta"].n_duplicates_removed == 1  # alpha0 already kept by alpha
    assert (stats["alpha"].n_train_docs, stats["alpha"].n_val_docs) == (16, 4)
    assert (stats["beta"].n_train_docs, stats["beta"].n_val_docs) == (8, 2)
    train, val = read_split(out, "alpha", "train"), read_split(out, "alpha", "val")
    assert not set(train) & set(val)  # split by document
    assert sorted(train + val) == sorted(doc(f"alpha{i}") for i in range(20))
    assert stats["alpha"].train_bytes == sum(len(t.encode()) for t in train)
    assert not stats["alpha"].truncated
    assert all(len(t) >= MIN_DOC_CHARS for t in train)
    assert read_manifest(out) == m
    assert DocsManifest.from_json(json.loads((out / "manifest.json").read_text())) == m


def test_cap_limits_bytes_and_marks_truncated(tmp_path: Path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    size = len(doc("alpha10").encode())
    m = prepare_documents(dirs, tmp_path / "out", cap_bytes=5 * size + 10, val_fraction=0.2, seed=0)
    alpha = next(s for s in m.domains if s.name == "alpha")
    assert alpha.truncated
    assert alpha.n_train_docs + alpha.n_val_docs == 5
    assert alpha.train_bytes + alpha.val_bytes <= 5 * size + 10
    assert alpha.n_val_docs == 1


def test_same_inputs_same_bytes_and_fingerprint(tmp_path: Path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    kw = {"cap_bytes": 10**6, "val_fraction": 0.2, "seed": 3}
    m1 = prepare_documents(dirs, tmp_path / "o1", **kw)
    m2 = prepare_documents(dirs, tmp_path / "o2", **kw)
    assert m1.fingerprint == m2.fingerprint
    for name in ("alpha/train.parquet", "alpha/val.parquet", "beta/val.parquet", "manifest.json"):
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes()

    other_seed = prepare_documents(dirs, tmp_path / "o3", **{**kw, "seed": 4})
    assert other_seed.fingerprint != m1.fingerprint  # different split, different content

    write_jsonl(tmp_path / "raw" / "beta" / "c.jsonl", [doc("gamma")])
    changed = prepare_documents(dirs, tmp_path / "o1", **kw)
    assert changed.fingerprint != m1.fingerprint


def test_unchanged_inputs_reuse_the_build_and_any_change_rebuilds(tmp_path, monkeypatch) -> None:
    import proxies.documents.prepare as prepare

    dirs = make_corpus(tmp_path / "raw")
    out, kw = tmp_path / "out", {"cap_bytes": 10**6, "val_fraction": 0.2, "seed": 0}
    first = prepare_documents(dirs, out, **kw)
    built = []
    real = prepare._prepare_domain
    monkeypatch.setattr(
        prepare,
        "_prepare_domain",
        lambda name, *a, **k: built.append(name) or real(name, *a, **k),
    )
    assert prepare_documents(dirs, out, **kw) == first
    assert built == []  # nothing read again
    assert prepare_documents(dirs, out, **{**kw, "seed": 1}) != first  # an option changed
    assert built == ["alpha", "beta"]
    built.clear()
    prepare_documents(dirs, out, **kw)  # back to seed 0: the stamp changed again, rebuilt
    assert built == ["alpha", "beta"]
    built.clear()
    write_jsonl(tmp_path / "raw" / "beta" / "c.jsonl", [doc("gamma")])  # a new input file
    assert prepare_documents(dirs, out, **kw).fingerprint != first.fingerprint
    assert built == ["alpha", "beta"]
    built.clear()
    (out / "alpha" / "val.parquet").unlink()  # a shard lost since: rebuilt, not trusted
    prepare_documents(dirs, out, **kw)
    assert built == ["alpha", "beta"] and (out / "alpha" / "val.parquet").is_file()


def test_too_few_usable_domains_lists_failures(tmp_path: Path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    (tmp_path / "raw" / "empty").mkdir()
    dirs["empty"] = tmp_path / "raw" / "empty"
    dirs["gone"] = tmp_path / "raw" / "gone"
    with pytest.raises(
        DataError,
        match=r"only 2 usable.*need at least 3.*empty: .*no supported"
        r".*gone: .*does not exist",
    ):
        prepare_documents(
            dirs, tmp_path / "out", cap_bytes=10**6, val_fraction=0.2, seed=0, min_domains=3
        )
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_failed_domain_is_left_out_when_enough_remain(tmp_path: Path) -> None:
    dirs = make_corpus(tmp_path / "raw")
    dirs["gone"] = tmp_path / "raw" / "gone"
    m = prepare_documents(dirs, tmp_path / "out", cap_bytes=10**6, val_fraction=0.2, seed=0)
    assert [s.name for s in m.domains] == ["alpha", "beta"]


@pytest.mark.parametrize("name", ["Alpha", "with-dash", "", "a b"])
def test_bad_domain_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="domain name"):
        prepare_documents(
            {name: tmp_path, "ok": tmp_path},
            tmp_path / "out",
            cap_bytes=100,
            val_fraction=0.1,
            seed=0,
        )


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val_fraction must be in"):
        prepare_documents({"a": tmp_path}, tmp_path, cap_bytes=10, val_fraction=1.0, seed=0)
    with pytest.raises(ConfigError, match="cap_bytes must be > 0, got 0"):
        prepare_documents({"a": tmp_path}, tmp_path, cap_bytes=0, val_fraction=0.1, seed=0)


def test_manifest_from_json_rejects_malformed() -> None:
    with pytest.raises(DataError, match="fingerprint must be sha256"):
        DocsManifest.from_json({"version": 2, "fingerprint": "abc", "domains": []})
    with pytest.raises(DataError, match="version must be 2, got 1"):
        DocsManifest.from_json({"version": 1, "fingerprint": "0" * 64, "domains": []})
    with pytest.raises(DataError, match=r"domains\[0\]\.n_files must be int"):
        DocsManifest.from_json(
            {
                "version": 2,
                "fingerprint": "0" * 64,
                "domains": [
                    {
                        "name": "a",
                        "n_train_docs": 1,
                        "n_val_docs": 1,
                        "train_bytes": 1,
                        "val_bytes": 1,
                        "n_duplicates_removed": 0,
                        "n_files": "1",
                        "truncated": False,
                        "source_docs": 2,
                        "source_bytes": 2,
                    }
                ],
            }
        )
