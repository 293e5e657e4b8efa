"""Encoding one input shard, in a worker process or inline: read its units as a stream, split,
clean, drop short texts and repeats within the shard, tokenize in batches and append the ids to
the shard's train and val files. Memory holds one batch, not the shard.

A document's split and its place under a cap come from its own content hash (seeded), not from
its position, so they do not depend on how the domain was cut into shards.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from mixtures.io import atomic_path, atomic_write_text
from mixtures.processes import end_with_parent
from proxies.documents.reading import iter_unit_texts
from proxies.documents.text import clean_text, split_text
from proxies.prepare.plan import MIN_DOC_CHARS, SPLITS, ShardJob, mix64, unit_interval

#: Documents, and text bytes, per ``encode_batch`` call.
BATCH_DOCS = 256
BATCH_BYTES = 1_000_000
_TOKENIZERS: dict[str, Tokenizer] = {}
#: Columns of ``.docs.npz``, one row per document kept: dedup id, selection key, tokens (EOS
#: included) and UTF-8 bytes.
_DTYPES = {"digest": np.uint64, "select": np.uint64, "ntok": np.int64, "nbytes": np.int64}


@dataclass(frozen=True)
class ShardResult:
    """What a finished shard holds (also its ``.json`` marker)."""

    domain: str
    index: int
    docs: int
    bytes: int
    tokens: dict[str, int]
    duplicates: int
    seconds: float
    input_bytes: int

    def to_json(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, data: dict) -> ShardResult:
        return cls(**data)


def init_worker(parent: int | None = None) -> None:
    """Worker process set-up: end with the parent (Linux), and encode on this process's own
    core (the tokenizers library would otherwise start a thread per core in every worker)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    end_with_parent(parent)


def read_result(job: ShardJob) -> ShardResult | None:
    """The result of a shard finished earlier with the same key, when all its files are there."""
    try:
        result = ShardResult.from_json(json.loads(job.marker.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    outputs = [job.output(f"{s}.bin") for s in SPLITS] + [job.output("docs.npz")]
    return result if all(p.is_file() for p in outputs) else None


def encode_shard(job: ShardJob) -> ShardResult:
    """Encode one shard and write its files, the marker last; DataError names a bad input."""
    start = time.perf_counter()
    tok = _tokenizer(job.encoding.path, job.encoding.sha256)
    dtype = np.dtype(job.encoding.dtype)
    eos = np.array([job.encoding.eos], dtype=dtype)
    tokens = dict.fromkeys(SPLITS, 0)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("digest", "select", "ntok", "nbytes")}
    seen: set[bytes] = set()
    duplicates = 0
    with contextlib.ExitStack() as stack:
        tmp = {s: stack.enter_context(atomic_path(job.output(f"{s}.bin"))) for s in SPLITS}
        files = {s: stack.enter_context(open(tmp[s], "wb")) for s in SPLITS}
        for texts in _batches(job, seen):
            duplicates += texts.duplicates
            digests = texts.digests
            select = np.frombuffer(b"".join(d[8:16] for d in digests), dtype="<u8")
            val = unit_interval(mix64(select, job.options.seed)) < job.options.val_fraction
            ntok = np.zeros(len(digests), dtype=np.int64)
            encs = tok.encode_batch(texts.texts, add_special_tokens=False)
            for i, enc in enumerate(encs):
                split = "val" if val[i] else "train"
                data = np.asarray(enc.ids, dtype=dtype).tobytes() + eos.tobytes()
                files[split].write(data)
                ntok[i] = len(enc.ids) + 1
                tokens[split] += len(enc.ids) + 1
            cols["digest"].append(np.frombuffer(b"".join(d[:8] for d in digests), dtype="<u8"))
            cols["select"].append(select)
            cols["ntok"].append(ntok)
            cols["nbytes"].append(np.asarray(texts.nbytes, dtype=np.int64))
        for fh in files.values():
            fh.close()
        arrays = {k: np.concatenate([np.zeros(0, _DTYPES[k]), *v]) for k, v in cols.items()}
        with atomic_path(job.output("docs.npz")) as tmp_npz, open(tmp_npz, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    result = ShardResult(
        domain=job.domain,
        index=job.index,
        docs=int(arrays["ntok"].size),
        bytes=int(arrays["nbytes"].sum()),
        tokens=tokens,
        duplicates=duplicates,
        seconds=time.perf_counter() - start,
        input_bytes=job.nbytes,
    )
    atomic_write_text(job.marker, json.dumps(result.to_json()))
    return result


@dataclass
class _Batch:
    texts: list[str]
    digests: list[bytes]
    nbytes: list[int]
    duplicates: int


def _batches(job: ShardJob, seen: set[bytes]) -> Iterator[_Batch]:
    """Clean documents of the shard in batches, short ones and repeats in the shard dropped."""
    batch = _Batch([], [], [], 0)
    size = 0
    for unit in job.units:
        for raw in iter_unit_texts(unit, max_text_bytes=job.options.max_text_bytes):
            for piece in split_text(raw, max_bytes=job.options.max_doc_bytes):
                text = clean_text(piece)
                if len(text) < MIN_DOC_CHARS:
                    continue
                data = text.encode("utf-8")
                digest = hashlib.sha256(data).digest()
                if digest in seen:
                    batch.duplicates += 1
                    continue
                seen.add(digest)
                batch.texts.append(text)
                batch.digests.append(digest)
                batch.nbytes.append(len(data))
                size += len(data)
                if len(batch.texts) >= BATCH_DOCS or size >= BATCH_BYTES:
                    yield batch
                    batch, size = _Batch([], [], [], 0), 0
    if batch.texts or batch.duplicates:
        yield batch


def _tokenizer(path: str, sha256: str) -> Tokenizer:
    tok = _TOKENIZERS.get(sha256)
    if tok is None:
        tok = Tokenizer.from_file(str(Path(path)))
        tok.no_truncation()
        tok.no_padding()
        _TOKENIZERS[sha256] = tok
    return tok
