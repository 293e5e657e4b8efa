"""The user's own token files as a corpus (``corpus.source: tokens``), used in place.

Teams keep pre-tokenized data as flat ``.bin`` files (nanoGPT, Megatron: raw ids of a given
dtype) or ``.npy`` files (numpy arrays with a header; OLMo also writes headerless arrays under
this name, which are read like ``.bin``), many shards per domain. Nothing is copied or
re-tokenized: the token folder of such a corpus holds only metadata::

    shards.json       per domain and split, the pieces (file, dtype, header offset, token range,
                      byte size) that ``TokenCorpus.array`` memory-maps
    counts.parquet    exact counts: documents (EOS tokens), bytes of token data, tokens
    tokenizer.json    a copy of ``corpus.tokenizer``, when one is given (for decoding)
    tokens.json       fingerprint, vocab size, eos id, dtype, domains (written last)

The files are found, read and scanned by ``proxies.shard_files``. Every shard is checked once:
its ids must lie in ``[0, vocab_size)``. The chunked scan that checks it is cached per file
(path, size, mtime), so a rebuild reads only new or changed files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from mixtures.errors import DataError
from mixtures.io import atomic_write_bytes, write_json, write_parquet
from proxies.shard_files import (
    SCAN_CHUNK,
    RawDtype,
    ShardFile,
    ShardScan,
    find_token_files,
    read_shard,
    scan_shard,
)
from proxies.shards import ShardPiece
from proxies.tokenizer import GivenTokenizer, load_tokenizer
from proxies.tokens import (
    COUNTS_VERSION,
    SHARDS_FILE,
    SOURCE,
    SPLITS,
    TOKEN_COUNTS_SCHEMA,
    TOKEN_FILES_SOURCE,
    TokenCorpus,
    view_fingerprint,
)


class TokenDomainFiles(BaseModel):
    """One domain's token files: each entry a file, a folder (its ``.bin``/``.npy`` files, not
    recursive) or a glob pattern (``**`` recurses); shards are read in sorted order per entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    train: list[str] = Field(
        min_length=1, description="training shards: files, folders or glob patterns"
    )
    val: list[str] = Field(
        default_factory=list,
        description="held-out validation shards; empty = the last `val_fraction` of the "
        "domain's tokens",
    )
    dtype: RawDtype | None = Field(
        None, description="dtype of this domain's flat files; null = corpus.token_dtype"
    )


@dataclass(frozen=True)
class TokenSourceSpec:
    """What ``build_token_files`` needs of the config."""

    domains: Mapping[str, TokenDomainFiles]
    vocab_size: int | None
    """Id space of the files; None = the tokenizer's."""
    eos_id: int | None
    """Document separator; None = the tokenizer's EOS."""
    token_dtype: str | None
    """dtype of flat files (``.bin``, headerless ``.npy``); None when every file has a header."""
    val_fraction: float
    """Share of a domain's tokens, from its end, held out when it lists no ``val`` files."""
    tokenizer: Path | None = None
    eos_token: str | None = None


def build_token_files(spec: TokenSourceSpec, out_dir: Path, *, scan_cache: Path) -> TokenCorpus:
    """Index the user's token files as a corpus in ``out_dir``; reuse a finished index.

    The build key is the settings plus each file's path, size and mtime: when ``tokens.json``
    records the same key, nothing is read. Otherwise every file is checked (ids in range,
    dtype, size), and only when all pass are the metadata files replaced, so bad input loses
    nothing already prepared.
    """
    given = load_tokenizer(spec.tokenizer) if spec.tokenizer is not None else None
    vocab, eos = _vocab_and_eos(spec, given)
    files = {d: _domain_files(d, spec.domains[d], spec.token_dtype) for d in sorted(spec.domains)}
    key = _build_key(files, spec, vocab, eos, given)
    meta_path = out_dir / "tokens.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("build_key") == key:
        return TokenCorpus.load(out_dir)
    scans = {}
    for f in _every_file(files):
        scans[f.path] = scan_shard(f, eos_id=eos, cache_dir=scan_cache)
        _check_ids(f, scans[f.path], vocab, given)
    layout = {d: _split(d, by_split, spec.val_fraction) for d, by_split in files.items()}
    counts = _counts(files, layout, scans, eos)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # the folder is unfinished until tokens.json is back
    if given is not None:
        atomic_write_bytes(out_dir / "tokenizer.json", given.path.read_bytes())
    else:
        (out_dir / "tokenizer.json").unlink(missing_ok=True)
    shards_json = {
        d: {split: [p.to_json() for p in pieces] for split, pieces in by_split.items()}
        for d, by_split in layout.items()
    }
    write_json(out_dir / SHARDS_FILE, {"domains": shards_json})
    write_parquet(counts, out_dir / "counts.parquet")
    identity = _identity(files, layout, scans, spec, vocab, eos, given)
    meta = {
        "source": TOKEN_FILES_SOURCE,
        "build_key": key,
        "fingerprint": view_fingerprint(identity, {d: set(SPLITS) for d in files}),
        "identity": identity,
        "vocab_size": vocab,
        "eos_id": eos,
        "dtype": np.result_type(*(f.dtype for f in _every_file(files))).name,
        "domains": sorted(files),
        "counts_version": COUNTS_VERSION,
        "tokenizer_sha256": given.sha256 if given is not None else None,
    }
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    return TokenCorpus.load(out_dir)


def _every_file(files: Mapping[str, Mapping[str, Sequence[ShardFile]]]) -> Iterator[ShardFile]:
    for by_split in files.values():
        for split_files in by_split.values():
            yield from split_files


def _vocab_and_eos(spec: TokenSourceSpec, given: GivenTokenizer | None) -> tuple[int, int]:
    """The id space and the EOS id: configured, else the tokenizer's; configured values must
    agree with a given tokenizer."""
    if given is not None:
        given.check_vocab(spec.vocab_size)
    vocab = spec.vocab_size
    if vocab is None:
        if given is None:
            raise DataError("corpus.vocab_size is needed for token files without a tokenizer")
        vocab = given.vocab_size
    if spec.eos_id is not None:
        eos = spec.eos_id
    elif given is not None:
        eos = given.eos_id(spec.eos_token)
    else:
        raise DataError("corpus.eos_id is needed for token files without a tokenizer")
    if not 0 <= eos < vocab:
        raise DataError(f"corpus.eos_id {eos} is outside the vocabulary [0, {vocab})")
    return vocab, eos


def _domain_files(
    domain: str, files: TokenDomainFiles, raw_dtype: str | None
) -> dict[str, list[ShardFile]]:
    """Every file of one domain, by split (``val`` empty when the fraction is held out), with a
    single dtype and no file listed twice."""
    raw_dtype = files.dtype or raw_dtype
    out: dict[str, list[ShardFile]] = {}
    seen: dict[Path, str] = {}
    for split in SPLITS:
        where = f"corpus.token_domains.{domain}.{split}"
        shards = []
        for path in find_token_files(getattr(files, split), where=where):
            if path in seen:
                raise DataError(f"{where}: {path} is already listed in {seen[path]}")
            seen[path] = where
            shards.append(read_shard(path, raw_dtype=raw_dtype, where=where))
        out[split] = shards
    first_of: dict[str, Path] = {}
    for f in _every_file({domain: out}):
        first_of.setdefault(f.dtype.name + ("" if f.dtype.isnative else " big-endian"), f.path)
    if len(first_of) > 1:
        found = ", ".join(f"{name} ({path})" for name, path in sorted(first_of.items()))
        raise DataError(
            f"corpus.token_domains.{domain}: files of one domain must share a dtype, got {found}"
        )
    return out


def _check_ids(f: ShardFile, scan: ShardScan, vocab: int, given: GivenTokenizer | None) -> None:
    if scan.min_id < 0:
        raise DataError(f"{f.where}: {f.path} holds the negative token id {scan.min_id}")
    if scan.max_id >= vocab:
        whose = f"tokenizer {given.path}" if given is not None else "corpus.vocab_size"
        raise DataError(
            f"{f.where}: {f.path} holds the token id {scan.max_id}, at or above the vocabulary "
            f"of {vocab} ({whose})"
        )


def _split(
    domain: str, files: Mapping[str, Sequence[ShardFile]], val_fraction: float
) -> dict[str, list[ShardPiece]]:
    """The pieces of each split: the listed files, or, without val files, the domain's tokens
    cut so that the last ``val_fraction`` of them (at least one) is held out. A document that
    straddles the cut is split between train and val."""
    train = list(files["train"])
    if files["val"]:
        return {"train": [f.piece() for f in train], "val": [f.piece() for f in files["val"]]}
    total = sum(f.n_tokens for f in train)
    n_val = max(1, math.ceil(total * val_fraction))
    cut = total - n_val
    if cut < 1:
        raise DataError(
            f"corpus.token_domains.{domain}: {total} tokens are too few to hold out "
            f"val_fraction {val_fraction} and keep any for training"
        )
    out: dict[str, list[ShardPiece]] = {"train": [], "val": []}
    start = 0
    for f in train:
        stop = start + f.n_tokens
        if start < cut:
            out["train"].append(f.piece(0, min(cut, stop) - start))
        if stop > cut:
            out["val"].append(f.piece(max(cut, start) - start, f.n_tokens))
        start = stop
    return out


def _count_eos(pieces: Sequence[ShardPiece], eos: int) -> int:
    n = 0
    for piece in pieces:
        data = piece.open()
        for start in range(0, len(data), SCAN_CHUNK):
            n += int(np.count_nonzero(np.asarray(data[start : start + SCAN_CHUNK]) == eos))
    return n


def _counts(
    files: Mapping[str, Mapping[str, Sequence[ShardFile]]],
    layout: Mapping[str, Mapping[str, Sequence[ShardPiece]]],
    scans: Mapping[Path, ShardScan],
    eos: int,
) -> pl.DataFrame:
    """Exact counts of every domain: documents (EOS tokens), bytes of token data and tokens,
    per split and for the whole source (train + val)."""
    rows = []
    for domain, by_split in layout.items():
        itemsize = np.dtype(by_split["train"][0].dtype).itemsize
        all_eos = sum(scans[f.path].n_eos for f in _every_file({domain: files[domain]}))
        val_eos = (
            sum(scans[f.path].n_eos for f in files[domain]["val"])
            if files[domain]["val"]
            else _count_eos(by_split["val"], eos)
        )
        docs = {"train": all_eos - val_eos, "val": val_eos}
        tokens = {split: sum(p.n_tokens for p in by_split[split]) for split in SPLITS}
        for split in SPLITS:
            n = tokens[split]
            rows.append((domain, split, docs[split], n * itemsize, n, False))
        n = tokens["train"] + tokens["val"]
        rows.append((domain, SOURCE, all_eos, n * itemsize, n, False))
    return pl.DataFrame(rows, schema=TOKEN_COUNTS_SCHEMA, orient="row")


def _build_key(
    files: Mapping[str, Mapping[str, Sequence[ShardFile]]],
    spec: TokenSourceSpec,
    vocab: int,
    eos: int,
    given: GivenTokenizer | None,
) -> str:
    data = {
        "vocab_size": vocab,
        "eos_id": eos,
        "tokenizer_sha256": given.sha256 if given is not None else None,
        "domains": {
            d: {
                split: [f.stamp() for f in g] or {"val_fraction": spec.val_fraction}
                for split, g in by_split.items()
            }
            for d, by_split in files.items()
        },
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _identity(
    files: Mapping[str, Mapping[str, Sequence[ShardFile]]],
    layout: Mapping[str, Mapping[str, Sequence[ShardPiece]]],
    scans: Mapping[Path, ShardScan],
    spec: TokenSourceSpec,
    vocab: int,
    eos: int,
    given: GivenTokenizer | None,
) -> dict[str, Any]:
    """Identity of the corpus's tokens: per file its name, token count, dtype and content
    sample, the split of each domain, the vocabulary, EOS and tokenizer. Paths and mtimes are
    left out, so a copy of the same files elsewhere is the same corpus (and its runs are kept).
    The fingerprint is its hash (``proxies.tokens.view_fingerprint``)."""
    domains = {}
    for d, by_split in files.items():
        entry: dict[str, Any] = {
            split: [[f.path.name, f.n_tokens, f.dtype.str, scans[f.path].sample_sha256] for f in g]
            for split, g in by_split.items()
        }
        if not by_split["val"]:
            entry["val"] = {"fraction": spec.val_fraction, "tokens": _n(layout[d]["val"])}
        domains[d] = entry
    data = {
        "source": TOKEN_FILES_SOURCE,
        "vocab_size": vocab,
        "eos_id": eos,
        "tokenizer_sha256": given.sha256 if given is not None else None,
        "domains": domains,
    }
    return {"kind": TOKEN_FILES_SOURCE, "data": data}


def _n(pieces: Sequence[ShardPiece]) -> int:
    return sum(p.n_tokens for p in pieces)
