"""Tokenizer and token arrays: built once per corpus, memory-mapped by every run.

Layout under a token folder::

    tokenizer.json                 byte-level BPE (tokenizers library)
    <domain>/train.bin, val.bin    uint16 token ids, documents separated by the EOS id
    counts.parquet                 domain, split, documents, bytes, tokens  (TOKEN_COUNTS_SCHEMA)
    tokens.json                    fingerprint, vocab size, eos id, domains (written last)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from mixtures.errors import DataError
from mixtures.io import atomic_path, atomic_write_bytes

TOKEN_COUNTS_SCHEMA = {
    "domain": pl.Utf8,
    "split": pl.Utf8,
    "documents": pl.Int64,
    "bytes": pl.Int64,
    "tokens": pl.Int64,
}
EOS = "<|endoftext|>"
#: Token ids are stored as uint16, so the vocabulary must fit in it.
MAX_VOCAB = 65_535
SPLITS = ("train", "val")


def _read_texts(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(f"document file {path} is missing; run prepare-corpus first")
    return pl.read_parquet(path, columns=["text"])["text"].to_list()


def _sample_texts(docs_dir: Path, domains: Sequence[str], sample_bytes: int) -> Iterator[str]:
    """An equal byte share of each domain's training documents (in file order, deterministic)."""
    share = max(1, sample_bytes // max(1, len(domains)))
    for domain in domains:
        used = 0
        for text in _read_texts(docs_dir / domain / "train.parquet"):
            if used >= share:
                break
            used += len(text.encode("utf-8"))
            yield text


def train_tokenizer(
    docs_dir: Path, domains: Sequence[str], *, vocab_size: int, sample_bytes: int
) -> Tokenizer:
    """Train a byte-level BPE tokenizer on an equal-share sample of every domain."""
    if not 256 < vocab_size <= MAX_VOCAB:
        raise DataError(f"vocab_size must be in (256, {MAX_VOCAB}], got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_sample_texts(docs_dir, domains, sample_bytes), trainer=trainer)
    return tok


def _encode_split(tok: Tokenizer, texts: list[str], eos_id: int, batch: int = 512) -> np.ndarray:
    parts: list[np.ndarray] = []
    for start in range(0, len(texts), batch):
        for enc in tok.encode_batch(texts[start : start + batch]):
            parts.append(np.asarray(enc.ids, dtype=np.uint16))
            parts.append(np.array([eos_id], dtype=np.uint16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def build_token_arrays(
    docs_dir: Path,
    out_dir: Path,
    *,
    domains: Sequence[str],
    docs_fingerprint: str,
    vocab_size: int,
    sample_bytes: int,
) -> TokenCorpus:
    """Train the tokenizer and encode every domain and split; reuse a finished build.

    The build is keyed by ``docs_fingerprint`` and the tokenizer settings: if ``tokens.json``
    already records the same key, nothing is recomputed.
    """
    key = _build_key(docs_fingerprint, vocab_size, sample_bytes, domains)
    meta_path = out_dir / "tokens.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("build_key") == key:
        return TokenCorpus.load(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(docs_dir, domains, vocab_size=vocab_size, sample_bytes=sample_bytes)
    atomic_write_bytes(out_dir / "tokenizer.json", tok.to_str().encode())
    eos_id = tok.token_to_id(EOS)
    if eos_id is None:  # a special token of the trainer, so only a changed trainer loses it
        raise DataError(f"the trained tokenizer has no {EOS!r} token")
    rows = []
    for domain in sorted(domains):
        (out_dir / domain).mkdir(exist_ok=True)
        for split in SPLITS:
            texts = _read_texts(docs_dir / domain / f"{split}.parquet")
            ids = _encode_split(tok, texts, eos_id)
            atomic_write_bytes(out_dir / domain / f"{split}.bin", ids.tobytes())
            n_bytes = sum(len(t.encode("utf-8")) for t in texts)
            rows.append((domain, split, len(texts), n_bytes, int(ids.size)))
    counts = pl.DataFrame(rows, schema=TOKEN_COUNTS_SCHEMA, orient="row")
    with atomic_path(out_dir / "counts.parquet") as tmp:
        counts.write_parquet(tmp)
    meta = {
        "build_key": key,
        "fingerprint": hashlib.sha256(f"{key}".encode()).hexdigest()[:16],
        "docs_fingerprint": docs_fingerprint,
        "vocab_size": tok.get_vocab_size(),
        "eos_id": eos_id,
        "domains": sorted(domains),
    }
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    return TokenCorpus.load(out_dir)


def _build_key(fp: str, vocab_size: int, sample_bytes: int, domains: Sequence[str]) -> str:
    blob = json.dumps([fp, vocab_size, sample_bytes, sorted(domains)])
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class TokenCorpus:
    """Memory-mapped token arrays of every domain and split, with counts and fingerprint."""

    path: Path
    fingerprint: str
    vocab_size: int
    eos_id: int
    domains: tuple[str, ...]
    counts: pl.DataFrame

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
        )

    def array(self, domain: str, split: str) -> np.ndarray:
        """The token ids of one domain and split, memory-mapped read-only."""
        if domain not in self.domains:
            raise DataError(f"unknown domain {domain!r}; the corpus has {list(self.domains)}")
        if split not in SPLITS:
            raise DataError(f"split must be one of {SPLITS}, got {split!r}")
        path = self.path / domain / f"{split}.bin"
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=np.uint16)
        return np.memmap(path, dtype=np.uint16, mode="r")

    def tokens(self, split: str = "train") -> dict[str, int]:
        """Token count per domain for one split."""
        rows = self.counts.filter(pl.col("split") == split).sort("domain")
        return dict(zip(rows["domain"].to_list(), rows["tokens"].to_list(), strict=True))

    def tokenizer(self) -> Tokenizer:
        """The corpus tokenizer, read from ``tokenizer.json``."""
        return Tokenizer.from_file(str(self.path / "tokenizer.json"))
