"""Token corpora: prepared once (``proxies.prepare`` from text, ``proxies.token_files`` from
the user's token files), memory-mapped by every run.

Layout under a token folder::

    tokenizer.json                 the tokenizer (tokenizers library)
    shards/<domain>/...            token files of prepared text, one pair (train, val) per input
                                   shard: ids (uint16, or uint32 past 65,536 ids), documents
                                   separated by the EOS id
    shards.json                    per domain and split, the pieces of token files that make it
                                   up, in order (paths relative to the folder, or absolute for
                                   the user's own files, read in place)
    counts.parquet                 domain, split (train, val, source), documents, bytes, tokens,
                                   estimated  (TOKEN_COUNTS_SCHEMA)
    tokens.json                    fingerprint, vocab size, eos id, dtype, domains, identity
                                   (what the fingerprint hashes; written last)

A folder without ``shards.json`` holds one ``<domain>/{train,val}.bin`` per domain and split.

The fingerprint names the whole corpus. A run is named by the part it reads
(``TokenCorpus.fingerprint_for``): the train split of its training domains and the val split of
its evaluated domains, hashed as the fingerprint hashes the whole, so that a run reading every
split has the corpus's fingerprint and a held-out domain's train split never enters a run id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl
from tokenizers import Tokenizer

from mixtures.errors import DataError
from proxies.shards import ShardPiece, open_pieces

TOKEN_COUNTS_SCHEMA = {
    "domain": pl.Utf8,
    "split": pl.Utf8,
    "documents": pl.Int64,
    "bytes": pl.Int64,
    "tokens": pl.Int64,
    "estimated": pl.Boolean,
}
#: The row of each domain's whole source (split ``source``): every document of the domain, not
#: only the capped share that was tokenized. Its tokens are exact when nothing was capped, else
#: estimated from the source's bytes and the tokenized share's tokens per byte.
SOURCE = "source"
#: Version of the counts table's content; a build with an older one has its counts recomputed.
COUNTS_VERSION = 2
SPLITS = ("train", "val")
#: ``tokens.json``'s ``source`` of a corpus read in place from the user's token files.
TOKEN_FILES_SOURCE = "tokens"
SHARDS_FILE = "shards.json"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in it, else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 65_536 else np.uint32)


@dataclass(frozen=True)
class TokenCorpus:
    """Memory-mapped token arrays of every domain and split, with counts and fingerprint."""

    path: Path
    fingerprint: str
    vocab_size: int
    eos_id: int
    domains: tuple[str, ...]
    counts: pl.DataFrame
    dtype: np.dtype
    shards: Mapping[str, Mapping[str, tuple[ShardPiece, ...]]] | None = field(
        default=None, repr=False
    )
    """Per domain and split, the pieces of the user's token files; None for built arrays."""
    stored_identity: Mapping[str, Any] | None = field(default=None, repr=False)
    """What ``fingerprint`` hashes (``tokens.json``'s ``identity``); None for a corpus prepared
    before it was kept there."""

    @classmethod
    def load(cls, path: str | Path) -> TokenCorpus:
        """Open a finished token folder (``tokens.json`` present); DataError otherwise."""
        path = Path(path)
        meta_path = path / "tokens.json"
        if not meta_path.exists():
            raise DataError(f"no token corpus at {path} (missing tokens.json); run prepare-corpus")
        meta = json.loads(meta_path.read_text())
        counts = pl.read_parquet(path / "counts.parquet")
        if dict(counts.schema) != TOKEN_COUNTS_SCHEMA:
            raise DataError(
                f"{path / 'counts.parquet'}: schema {dict(counts.schema)} is not "
                f"{TOKEN_COUNTS_SCHEMA}"
            )
        shards = None
        if meta.get("source") == TOKEN_FILES_SOURCE or (path / SHARDS_FILE).is_file():
            shards = _read_shards(path / SHARDS_FILE)
        return cls(
            path=path,
            fingerprint=meta["fingerprint"],
            vocab_size=int(meta["vocab_size"]),
            eos_id=int(meta["eos_id"]),
            domains=tuple(meta["domains"]),
            counts=counts,
            dtype=np.dtype(meta.get("dtype", "uint16")),
            shards=shards,
            stored_identity=meta.get("identity"),
        )

    def fingerprint_for(self, train_domains: Iterable[str], eval_domains: Iterable[str]) -> str:
        """The fingerprint of what a run reads: the train split of ``train_domains`` and the
        val split of ``eval_domains``, with the tokenizer. It is ``fingerprint`` when that is
        every split of every domain, so such runs keep the ids they always had; a held-out
        domain's train split is not in it, so rebuilding that split changes no run id.
        Domains the corpus lacks are left out (the trainer reports them). A corpus whose
        identity is unknown (token files indexed before it was kept) gives ``fingerprint``."""
        reads: dict[str, set[str]] = {}
        for domain in train_domains:
            reads.setdefault(domain, set()).add("train")
        for domain in eval_domains:
            reads.setdefault(domain, set()).add("val")
        if all(reads.get(d) == set(SPLITS) for d in self.domains) or self.identity is None:
            return self.fingerprint
        return view_fingerprint(self.identity, reads)

    @cached_property
    def identity(self) -> Mapping[str, Any] | None:
        """What ``fingerprint`` hashes: ``tokens.json``'s, or for a text corpus prepared before
        it was kept, recomputed from the token files (and used only if it gives the recorded
        fingerprint back)."""
        if self.stored_identity is not None:
            return self.stored_identity
        meta = json.loads((self.path / "tokens.json").read_text())
        if meta.get("source") != "text" or meta.get("tokenizer_sha256") is None:
            return None
        identity = text_identity(
            str(meta["tokenizer_sha256"]),
            self.eos_id,
            self.dtype.name,
            {d: {s: self._split_files(d, s) for s in SPLITS} for d in self.domains},
        )
        whole = {d: set(SPLITS) for d in self.domains}
        return identity if view_fingerprint(identity, whole) == self.fingerprint else None

    def _split_files(self, domain: str, split: str) -> list[Path]:
        """The token files of a prepared text corpus's split, in order."""
        if self.shards is None:
            return [self.path / domain / f"{split}.bin"]
        return [Path(p.path) for p in self.shards[domain][split]]

    def array(self, domain: str, split: str) -> np.ndarray:
        """The token ids of one domain and split, memory-mapped read-only.

        For the user's token files: one file's memory map, or for several a read-only
        ``proxies.shards.ShardedTokens`` view, which supports what training and evaluation use
        of an ndarray (``len``, ``dtype``, integer-array indexing of any shape). It is typed as
        an ndarray because that is what their signatures take.
        """
        if domain not in self.domains:
            raise DataError(f"unknown domain {domain!r}; the corpus has {list(self.domains)}")
        if split not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got {split!r}")
        if self.shards is not None:
            return cast(np.ndarray, open_pieces(self.shards[domain][split]))
        path = self.path / domain / f"{split}.bin"
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=self.dtype)
        return np.memmap(path, dtype=self.dtype, mode="r")

    def tokens(self, split: str = "train") -> dict[str, int]:
        """Token count per domain of one split, or of the whole source (``"source"``)."""
        rows = self.counts.filter(pl.col("split") == split).sort("domain")
        return dict(zip(rows["domain"].to_list(), rows["tokens"].to_list(), strict=True))

    def estimated(self) -> dict[str, bool]:
        """Per domain: whether its source token count is estimated (only a sample tokenized)."""
        rows = self.counts.filter(pl.col("split") == SOURCE).sort("domain")
        return dict(zip(rows["domain"].to_list(), rows["estimated"].to_list(), strict=True))

    def tokenizer(self) -> Tokenizer:
        """The corpus tokenizer, read from ``tokenizer.json``; DataError when the corpus has
        none (token files prepared without ``corpus.tokenizer``)."""
        path = self.path / "tokenizer.json"
        if not path.is_file():
            raise DataError(f"corpus {self.path} has no tokenizer; set corpus.tokenizer")
        return Tokenizer.from_file(str(path))


def text_identity(
    tokenizer_sha256: str, eos_id: int, dtype: str, files: Mapping[str, Mapping[str, list[Path]]]
) -> dict[str, Any]:
    """The identity of a prepared text corpus: its tokenizer, EOS and dtype, and per domain and
    split the sha256 of its tokens in order (``files``: the split's token files)."""
    splits = {d: {s: files_sha256(paths) for s, paths in by.items()} for d, by in files.items()}
    return {"kind": "text", "tokenizer": [tokenizer_sha256, eos_id, dtype], "splits": splits}


def files_sha256(paths: Iterable[Path]) -> str:
    """sha256 of the files' bytes one after another: the same tokens give the same hash,
    however they were cut into files."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def view_fingerprint(identity: Mapping[str, Any], reads: Mapping[str, set[str]]) -> str:
    """The fingerprint of the splits ``reads`` names (domain -> splits) of a corpus whose
    identity is ``identity``, hashed as the whole corpus's fingerprint is: with every split of
    every domain, it is that fingerprint.

    ``text``: sha256 of [tokenizer sha256, EOS, dtype, {domain: {split: tokens sha256}}].
    ``tokens`` (the user's token files): sha256 of the indexed files' identity with only the
    read domains and splits; a val split cut from the end of the train files
    (``{"fraction", "tokens"}``) brings the train files' entry with it, as it is made of them.
    """
    if identity["kind"] == "text":
        splits = {
            d: {s: sha for s, sha in by_split.items() if s in reads[d]}
            for d, by_split in identity["splits"].items()
            if reads.get(d)
        }
        blob = json.dumps([*identity["tokenizer"], splits], sort_keys=True)
    else:
        data = identity["data"]
        domains = {}
        for d, entry in data["domains"].items():
            wanted = set(reads.get(d, ()))
            if "val" in wanted and isinstance(entry.get("val"), dict):
                wanted.add("train")
            if wanted:
                domains[d] = {s: v for s, v in entry.items() if s in wanted}
        blob = json.dumps({**data, "domains": domains}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _piece(data: dict, root: Path) -> ShardPiece:
    """A piece of ``shards.json``; a relative path is one inside the corpus folder."""
    piece = ShardPiece.from_json(data)
    if Path(piece.path).is_absolute():
        return piece
    return replace(piece, path=str(root / piece.path))


def _read_shards(path: Path) -> dict[str, dict[str, tuple[ShardPiece, ...]]]:
    """``shards.json``, with every file checked to still have the size it had when indexed (a
    file rewritten since would be read under the old fingerprint)."""
    if not path.is_file():
        raise DataError(f"{path} is missing; run prepare-corpus")
    data = json.loads(path.read_text())["domains"]
    out = {
        d: {split: tuple(_piece(p, path.parent) for p in pieces) for split, pieces in s.items()}
        for d, s in data.items()
    }
    for by_split in out.values():
        for pieces in by_split.values():
            for piece in pieces:
                file = Path(piece.path)
                size = file.stat().st_size if file.is_file() else None
                if size != piece.size:
                    found = "is missing" if size is None else f"has {size} bytes"
                    raise DataError(
                        f"token file {file} had {piece.size} bytes when the corpus was prepared, "
                        f"now it {found}; run prepare-corpus again"
                    )
    return out
