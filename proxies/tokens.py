"""Token arrays: built once per corpus (``proxies.encode``), memory-mapped by every run.

Layout under a token folder::

    tokenizer.json                 the tokenizer (tokenizers library)
    <domain>/train.bin, val.bin    token ids (uint16, or uint32 past 65,536 ids), documents
                                   separated by the EOS id
    counts.parquet                 domain, split (train, val, source), documents, bytes, tokens,
                                   estimated  (TOKEN_COUNTS_SCHEMA)
    tokens.json                    fingerprint, vocab size, eos id, dtype, domains (written last)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tokenizers import Tokenizer

from mixtures.errors import DataError

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
        return cls(
            path=path,
            fingerprint=meta["fingerprint"],
            vocab_size=int(meta["vocab_size"]),
            eos_id=int(meta["eos_id"]),
            domains=tuple(meta["domains"]),
            counts=counts,
            dtype=np.dtype(meta.get("dtype", "uint16")),
        )

    def array(self, domain: str, split: str) -> np.ndarray:
        """The token ids of one domain and split, memory-mapped read-only."""
        if domain not in self.domains:
            raise DataError(f"unknown domain {domain!r}; the corpus has {list(self.domains)}")
        if split not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got {split!r}")
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
        """The corpus tokenizer, read from ``tokenizer.json``."""
        return Tokenizer.from_file(str(self.path / "tokenizer.json"))
