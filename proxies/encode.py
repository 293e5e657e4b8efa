"""Encoding the cleaned documents into token arrays: one ``.bin`` file per domain and split,
their counts, and ``tokens.json`` (written last: its presence marks a finished build)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from tokenizers import Tokenizer

from mixtures.errors import DataError
from mixtures.io import atomic_write_bytes, write_parquet
from proxies.tokenizer import eos_id, train_tokenizer
from proxies.tokens import SPLITS, TOKEN_COUNTS_SCHEMA, TokenCorpus, token_dtype


def read_texts(path: Path) -> list[str]:
    """The ``text`` column of one document shard."""
    if not path.exists():
        raise DataError(f"document file {path} is missing; run prepare-corpus first")
    return pl.read_parquet(path, columns=["text"])["text"].to_list()


def sample_texts(docs_dir: Path, domains: Sequence[str], sample_bytes: int) -> Iterator[str]:
    """An equal byte share of each domain's training documents (in file order, deterministic)."""
    share = max(1, sample_bytes // max(1, len(domains)))
    for domain in domains:
        used = 0
        for text in read_texts(docs_dir / domain / "train.parquet"):
            if used >= share:
                break
            used += len(text.encode("utf-8"))
            yield text


def encode_texts(
    tok: Tokenizer, texts: list[str], eos: int, dtype: np.dtype, batch: int = 512
) -> np.ndarray:
    """Every text's ids followed by ``eos``, concatenated."""
    parts: list[np.ndarray] = []
    for start in range(0, len(texts), batch):
        for enc in tok.encode_batch(texts[start : start + batch]):
            parts.append(np.asarray(enc.ids, dtype=dtype))
            parts.append(np.array([eos], dtype=dtype))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


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
    tok = train_tokenizer(sample_texts(docs_dir, domains, sample_bytes), vocab_size=vocab_size)
    atomic_write_bytes(out_dir / "tokenizer.json", tok.to_str().encode())
    eos = eos_id(tok)
    dtype = token_dtype(tok.get_vocab_size())
    rows = []
    for domain in sorted(domains):
        for split in SPLITS:
            texts = read_texts(docs_dir / domain / f"{split}.parquet")
            ids = encode_texts(tok, texts, eos, dtype)
            atomic_write_bytes(out_dir / domain / f"{split}.bin", ids.tobytes())
            n_bytes = sum(len(t.encode("utf-8")) for t in texts)
            rows.append((domain, split, len(texts), n_bytes, int(ids.size)))
    write_parquet(
        pl.DataFrame(rows, schema=TOKEN_COUNTS_SCHEMA, orient="row"), out_dir / "counts.parquet"
    )
    meta = {
        "build_key": key,
        "fingerprint": hashlib.sha256(f"{key}".encode()).hexdigest()[:16],
        "docs_fingerprint": docs_fingerprint,
        "vocab_size": tok.get_vocab_size(),
        "eos_id": eos,
        "dtype": np.dtype(dtype).name,
        "domains": sorted(domains),
    }
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    return TokenCorpus.load(out_dir)


def _build_key(fp: str, vocab_size: int, sample_bytes: int, domains: Sequence[str]) -> str:
    blob = json.dumps([fp, vocab_size, sample_bytes, sorted(domains)])
    return hashlib.sha256(blob.encode()).hexdigest()
