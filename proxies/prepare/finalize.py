"""After every shard of a domain is encoded: drop documents seen earlier (in an earlier shard,
or an earlier domain in sorted order), apply the cap, make sure both splits have a document,
and list the token files that make up each split. A shard whose documents all stay where the
worker put them is used as it is; only a shard that lost or moved a document is rewritten."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixtures.errors import DataError
from mixtures.io import atomic_path
from proxies.prepare.plan import SPLITS, PrepOptions, ShardJob, mix64, unit_interval
from proxies.prepare.worker import ShardResult
from proxies.shards import ShardPiece

#: Tokens copied per read when a shard is rewritten.
_COPY_TOKENS = 1 << 22


@dataclass
class SplitCount:
    docs: int = 0
    bytes: int = 0
    tokens: int = 0


@dataclass
class DomainTokens:
    """One prepared domain: its token pieces (paths relative to the build folder), and its
    counts per split and for the whole source (``source``)."""

    name: str
    pieces: dict[str, list[ShardPiece]] = field(default_factory=dict)
    counts: dict[str, SplitCount] = field(default_factory=dict)
    duplicates: int = 0
    truncated: bool = False
    input_bytes: int = 0
    n_shards: int = 0
    files: set[str] = field(default_factory=set)
    """Names of the files under the domain's shard folder that the build uses."""


def finalize_domain(
    name: str,
    jobs: list[ShardJob],
    results: list[ShardResult],
    seen: set[int],
    options: PrepOptions,
    out_dir: Path,
) -> DomainTokens:
    """Select and place the documents of one domain; ``seen`` holds the dedup ids of earlier
    domains and gains this domain's. DataError when fewer than 2 documents remain."""
    docs = [dict(np.load(j.output("docs.npz"))) for j in jobs]
    digest = np.concatenate([d["digest"] for d in docs]).astype(np.uint64)
    select = np.concatenate([d["select"] for d in docs]).astype(np.uint64)
    ntok = np.concatenate([d["ntok"] for d in docs]).astype(np.int64)
    nbytes = np.concatenate([d["nbytes"] for d in docs]).astype(np.int64)
    u = unit_interval(mix64(select, options.seed))
    worker_val = u < options.val_fraction
    keep = np.ones(digest.size, dtype=bool)
    for i, d in enumerate(digest.tolist()):
        if d in seen:
            keep[i] = False
        else:
            seen.add(d)
    out = DomainTokens(name=name, input_bytes=sum(j.nbytes for j in jobs), n_shards=len(jobs))
    out.duplicates = sum(r.duplicates for r in results) + int((~keep).sum())
    out.counts["source"] = SplitCount(
        int(keep.sum()), int(nbytes[keep].sum()), int(ntok[keep].sum())
    )
    chosen = _cap(keep, nbytes, select, options)
    out.truncated = bool(chosen.sum() < keep.sum())
    val = _ensure_both_splits(name, chosen, worker_val, u)
    for split, mask in (("train", chosen & ~val), ("val", chosen & val)):
        out.counts[split] = SplitCount(
            int(mask.sum()), int(nbytes[mask].sum()), int(ntok[mask].sum())
        )
    bounds = np.cumsum([0] + [d["ntok"].size for d in docs])
    for k, job in enumerate(jobs):
        lo, hi = bounds[k], bounds[k + 1]
        _place_shard(
            out, job, results[k], ntok[lo:hi], worker_val[lo:hi], chosen[lo:hi], val[lo:hi], out_dir
        )
    return out


def _cap(
    keep: np.ndarray, nbytes: np.ndarray, select: np.ndarray, options: PrepOptions
) -> np.ndarray:
    """The kept documents within ``cap_bytes``, taken in a seeded order of their content."""
    if options.cap_bytes is None or int(nbytes[keep].sum()) <= options.cap_bytes:
        return keep.copy()
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(mix64(select[idx], options.seed + 1), kind="stable")]
    within = order[np.cumsum(nbytes[order]) <= options.cap_bytes]
    chosen = np.zeros_like(keep)
    chosen[within] = True
    return chosen


def _ensure_both_splits(
    name: str, chosen: np.ndarray, val: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """The val flags of the chosen documents, with one moved when a split would be empty."""
    n = int(chosen.sum())
    if n < 2:
        raise DataError(
            f"domain {name}: {n} document(s) left after cleaning, dedup and the cap, need 2 "
            "(one for train, one for val)"
        )
    val = val & chosen
    idx = np.flatnonzero(chosen)
    if not val.any():
        val[idx[np.argmin(u[idx])]] = True
    elif val[idx].all():
        val[idx[np.argmax(u[idx])]] = False
    return val


def _place_shard(
    out: DomainTokens,
    job: ShardJob,
    result: ShardResult,
    ntok: np.ndarray,
    worker_val: np.ndarray,
    chosen: np.ndarray,
    val: np.ndarray,
    out_dir: Path,
) -> None:
    """Add the shard's train and val files to the domain, rewritten if a document moved."""
    dtype = np.dtype(job.encoding.dtype)
    as_written = bool(chosen.all()) and bool((val == worker_val).all())
    tag = hashlib.sha256(np.packbits(np.stack([chosen, val])).tobytes()).hexdigest()[:8]
    for split in SPLITS:
        src = job.output(f"{split}.bin")
        if as_written:
            path, n = src, result.tokens[split]
        else:
            wanted = chosen & (val if split == "val" else ~val)
            path = job.output(f"{tag}.{split}.bin")
            n = _rewrite(job, ntok, worker_val, wanted, dtype, path)
        out.files.add(path.name)
        if n == 0:
            continue
        rel = path.relative_to(out_dir).as_posix()
        size = n * dtype.itemsize
        out.pieces.setdefault(split, []).append(ShardPiece(rel, dtype.name, 0, 0, n, size))
    out.files.update(job.output(s).name for s in ("train.bin", "val.bin", "docs.npz", "json"))


def _rewrite(
    job: ShardJob,
    ntok: np.ndarray,
    worker_val: np.ndarray,
    wanted: np.ndarray,
    dtype: np.dtype,
    path: Path,
) -> int:
    """Write the wanted documents (from either of the worker's files, in order) to ``path``;
    returns their tokens."""
    sources = {}
    for split, mask in (("train", ~worker_val), ("val", worker_val)):
        file = job.output(f"{split}.bin")
        arr = np.memmap(file, dtype=dtype, mode="r") if file.stat().st_size else np.zeros(0, dtype)
        starts = np.zeros(ntok.size, dtype=np.int64)
        starts[mask] = np.cumsum(ntok[mask]) - ntok[mask]
        sources[split] = (arr, starts)
    total = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for i in np.flatnonzero(wanted):
            arr, starts = sources["val" if worker_val[i] else "train"]
            lo, hi = int(starts[i]), int(starts[i] + ntok[i])
            for a in range(lo, hi, _COPY_TOKENS):
                data = np.asarray(arr[a : min(hi, a + _COPY_TOKENS)]).tobytes()
                fh.write(data)
            total += hi - lo
    return total


def remove_stale(domain_dir: Path, used: set[str]) -> None:
    """Delete files of a domain's shard folder the build does not use: shards of older
    inputs or settings, rewrites of older decisions, temp files of killed writers."""
    if not domain_dir.is_dir():
        return
    for path in domain_dir.iterdir():
        if path.is_file() and path.name not in used:
            path.unlink(missing_ok=True)
