"""Encoding the cleaned documents into token arrays: one ``.bin`` file per domain and split,
their counts, and ``tokens.json`` (written last: its presence marks a finished build).

The tokenizer is a byte-level BPE trained on the corpus, or the user's own (``tokenizer``): its
content hash then enters the build key, and so the corpus fingerprint and every run's id.
"""

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
from proxies.documents import DocsManifest, read_manifest
from proxies.tokenizer import (
    GivenTokenizer,
    check_trained_vocab,
    eos_id,
    load_tokenizer,
    train_tokenizer,
)
from proxies.tokens import (
    COUNTS_VERSION,
    SOURCE,
    SPLITS,
    TOKEN_COUNTS_SCHEMA,
    TokenCorpus,
    token_dtype,
)


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
    """Every text's ids followed by ``eos``, concatenated. The tokenizer's own special tokens
    (a BOS its post-processor would add) are left out: ``eos`` alone separates documents."""
    parts: list[np.ndarray] = []
    for start in range(0, len(texts), batch):
        for enc in tok.encode_batch(texts[start : start + batch], add_special_tokens=False):
            parts.append(np.asarray(enc.ids, dtype=dtype))
            parts.append(np.array([eos], dtype=dtype))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def build_token_arrays(
    docs_dir: Path,
    out_dir: Path,
    *,
    domains: Sequence[str],
    docs_fingerprint: str,
    vocab_size: int | None,
    sample_bytes: int,
    tokenizer: str | Path | None = None,
    eos_token: str | None = None,
) -> TokenCorpus:
    """Train the tokenizer (or read ``tokenizer``) and encode every domain and split; reuse a
    finished build.

    The build is keyed by ``docs_fingerprint`` and the tokenizer: the training settings
    (``vocab_size``, ``sample_bytes``) for a trained one, the content hash and EOS id for a given
    one (``vocab_size`` is then the tokenizer's: None, or equal to it). If ``tokens.json``
    already records the same key, nothing is recomputed. Token files are uint32 when the
    vocabulary exceeds 65,536 ids.
    """
    given = load_tokenizer(tokenizer) if tokenizer is not None else None
    if given is None:
        key = _build_key(docs_fingerprint, _trained_vocab(vocab_size), sample_bytes, domains)
    else:
        given.check_vocab(vocab_size)
        key = _given_build_key(docs_fingerprint, given, given.eos_id(eos_token), domains)
    meta_path = out_dir / "tokens.json"
    manifest = read_manifest(docs_dir)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("build_key") == key:
            if meta.get("counts_version") != COUNTS_VERSION:  # token files fine, counts older
                _write_counts(out_dir, manifest, _file_counts(out_dir, manifest, meta))
                atomic_write_bytes(
                    meta_path,
                    json.dumps({**meta, "counts_version": COUNTS_VERSION}, indent=2).encode(),
                )
            return TokenCorpus.load(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # the folder is unfinished until tokens.json is back
    tok, eos, n_ids = _corpus_tokenizer(
        given,
        docs_dir,
        out_dir,
        domains=domains,
        vocab_size=vocab_size,
        sample_bytes=sample_bytes,
        eos_token=eos_token,
    )
    dtype = token_dtype(n_ids)
    n_tokens: dict[tuple[str, str], int] = {}
    for domain in sorted(domains):
        for split in SPLITS:
            texts = read_texts(docs_dir / domain / f"{split}.parquet")
            ids = encode_texts(tok, texts, eos, dtype)
            atomic_write_bytes(out_dir / domain / f"{split}.bin", ids.tobytes())
            n_tokens[domain, split] = int(ids.size)
    _write_counts(out_dir, manifest, n_tokens)
    meta = {
        "build_key": key,
        "fingerprint": hashlib.sha256(f"{key}".encode()).hexdigest()[:16],
        "docs_fingerprint": docs_fingerprint,
        "vocab_size": n_ids,
        "eos_id": eos,
        "dtype": np.dtype(dtype).name,
        "domains": sorted(domains),
        "counts_version": COUNTS_VERSION,
    }
    if given is not None:
        meta["tokenizer_sha256"] = given.sha256
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    return TokenCorpus.load(out_dir)


def _corpus_tokenizer(
    given: GivenTokenizer | None,
    docs_dir: Path,
    out_dir: Path,
    *,
    domains: Sequence[str],
    vocab_size: int | None,
    sample_bytes: int,
    eos_token: str | None,
) -> tuple[Tokenizer, int, int]:
    """The tokenizer of a build, saved as ``out_dir/tokenizer.json``: (tokenizer, EOS id,
    number of ids). Trained on the documents unless ``given``."""
    if given is None:
        sample = sample_texts(docs_dir, domains, sample_bytes)
        tok = train_tokenizer(sample, vocab_size=_trained_vocab(vocab_size))
        atomic_write_bytes(out_dir / "tokenizer.json", tok.to_str().encode())
        return tok, eos_id(tok), tok.get_vocab_size()
    atomic_write_bytes(out_dir / "tokenizer.json", given.path.read_bytes())
    return given.tokenizer, given.eos_id(eos_token), given.vocab_size


def _trained_vocab(vocab_size: int | None) -> int:
    """The vocabulary to train, checked (it must fit in uint16)."""
    if vocab_size is None:
        raise DataError("vocab_size is needed to train a tokenizer, got None")
    check_trained_vocab(vocab_size)
    return vocab_size


def _file_counts(out_dir: Path, manifest: DocsManifest, meta: dict) -> dict[tuple[str, str], int]:
    """Tokens of every domain and split of a finished build, from its files' sizes."""
    itemsize = np.dtype(meta.get("dtype", "uint16")).itemsize
    return {
        (d.name, split): (out_dir / d.name / f"{split}.bin").stat().st_size // itemsize
        for d in manifest.domains
        for split in SPLITS
    }


def _write_counts(
    out_dir: Path, manifest: DocsManifest, n_tokens: dict[tuple[str, str], int]
) -> None:
    """counts.parquet: the tokenized splits, and each domain's whole source (split ``source``),
    exact when nothing was capped, else its bytes times the tokenized share's tokens per byte."""
    rows = []
    for d in manifest.domains:
        train, val = n_tokens[d.name, "train"], n_tokens[d.name, "val"]
        rows.append((d.name, "train", d.n_train_docs, d.train_bytes, train, False))
        rows.append((d.name, "val", d.n_val_docs, d.val_bytes, val, False))
        kept_bytes = d.train_bytes + d.val_bytes
        source = round(d.source_bytes * (train + val) / max(kept_bytes, 1))
        if not d.truncated:
            source = train + val
        rows.append((d.name, SOURCE, d.source_docs, d.source_bytes, source, d.truncated))
    frame = pl.DataFrame(rows, schema=TOKEN_COUNTS_SCHEMA, orient="row")
    write_parquet(frame, out_dir / "counts.parquet")


def _build_key(fp: str, vocab_size: int, sample_bytes: int, domains: Sequence[str]) -> str:
    """Key of a build with a trained tokenizer: the documents and the training settings."""
    blob = json.dumps([fp, vocab_size, sample_bytes, sorted(domains)])
    return hashlib.sha256(blob.encode()).hexdigest()


def _given_build_key(fp: str, given: GivenTokenizer, eos: int, domains: Sequence[str]) -> str:
    """Key of a build with a given tokenizer: the documents, the tokenizer's content hash and
    the EOS id chosen in it (a different layout from the trained key's, so the two never meet)."""
    blob = json.dumps([fp, {"tokenizer_sha256": given.sha256, "eos_id": eos}, sorted(domains)])
    return hashlib.sha256(blob.encode()).hexdigest()
