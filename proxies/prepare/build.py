"""The preparation of a text corpus: domain folders -> token files, streamed, shard by shard, in
worker processes, resumable.

Steps: list each domain's input units; train the tokenizer on an equal-share sample of every
domain (or read the user's); encode every shard not finished by an earlier, killed or failed
run; then select and place each domain's documents (:mod:`proxies.prepare.finalize`) and write
``shards.json``, ``counts.parquet`` and, last, ``tokens.json``. Peak memory is one batch per
worker plus a few ints per document; it does not grow with a domain's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import polars as pl

from mixtures.errors import DataError
from mixtures.io import atomic_write_bytes, write_parquet
from proxies.documents.reading import InputUnit, iter_unit_texts, plan_units
from proxies.documents.text import clean_text, split_text
from proxies.prepare.finalize import DomainTokens, finalize_domain, remove_stale
from proxies.prepare.plan import (
    MIN_DOC_CHARS,
    SPLITS,
    Encoding,
    PrepOptions,
    ShardJob,
    check_domains,
    input_stamp,
    plan_domain,
)
from proxies.prepare.worker import ShardResult, encode_shard, init_worker, read_result
from proxies.shards import ShardPiece
from proxies.tokenizer import (
    GivenTokenizer,
    check_trained_vocab,
    eos_id,
    load_tokenizer,
    train_tokenizer,
)
from proxies.tokens import (
    COUNTS_VERSION,
    SHARDS_FILE,
    TOKEN_COUNTS_SCHEMA,
    TokenCorpus,
    text_identity,
    token_dtype,
    view_fingerprint,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class TokenizerSpec:
    """The user's tokenizer (``path``, with ``eos_token``), or a BPE of ``vocab_size`` ids
    trained on ``sample_bytes`` of text."""

    path: str | Path | None = None
    eos_token: str | None = None
    vocab_size: int | None = None
    sample_bytes: int = 8_000_000


def prepare_tokens(
    domain_dirs: Mapping[str, Path],
    out_dir: Path,
    *,
    tokenizer: TokenizerSpec,
    options: PrepOptions,
    min_domains: int | None = None,
    log: Log | None = None,
    progress_bar: bool = False,
) -> TokenCorpus:
    """Prepare every domain folder into token files under ``out_dir``; reuse what is done.

    ``min_domains`` None: every domain must be usable, else at least that many. DataError
    lists each failed domain with its reason; shards finished before the error stay, so the
    next run encodes only what is left.
    """
    options.check()
    check_domains(domain_dirs)
    given = None
    if tokenizer.path is not None:  # checked before anything is written
        given = load_tokenizer(tokenizer.path)
        given.check_vocab(tokenizer.vocab_size)
        given.eos_id(tokenizer.eos_token)
    elif tokenizer.vocab_size is None:
        raise DataError("vocab_size is needed to train a tokenizer, got None")
    else:
        check_trained_vocab(tokenizer.vocab_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    failures: dict[str, str] = {}
    units: dict[str, tuple[Path, list[InputUnit]]] = {}
    for name in sorted(domain_dirs):
        folder = Path(domain_dirs[name]).resolve()
        try:
            units[name] = (folder, plan_units(folder, unit_bytes=options.shard_bytes))
        except DataError as exc:
            failures[name] = str(exc)
    required = len(domain_dirs) if min_domains is None else min_domains
    _check_enough(units, failures, required, len(domain_dirs))
    whole_files = {name: (folder, _whole_files(us)) for name, (folder, us) in units.items()}
    encoding = _encoding(whole_files, out_dir, tokenizer, given, options, say, failures)
    _check_enough(
        {n: u for n, u in units.items() if n not in failures}, failures, required, len(domain_dirs)
    )
    jobs = {
        name: plan_domain(name, folder, out_dir, encoding, options)
        for name, (folder, _) in units.items()
        if name not in failures
    }
    key = hashlib.sha256(
        json.dumps([input_stamp(jobs, options), encoding.sha256, encoding.eos]).encode()
    ).hexdigest()
    meta_path = out_dir / "tokens.json"
    if meta_path.is_file() and not failures:
        try:
            if json.loads(meta_path.read_text()).get("build_key") == key:
                return _with_identity(TokenCorpus.load(out_dir))
        except ValueError:
            pass
    meta_path.unlink(missing_ok=True)  # the folder is unfinished until tokens.json is back
    results = _encode_all(jobs, options, failures, say, progress_bar)
    kept: list[DomainTokens] = []
    seen: set[int] = set()
    for name in sorted(jobs):
        if name in failures:
            continue
        try:
            domain = finalize_domain(name, jobs[name], results[name], seen, options, out_dir)
        except DataError as exc:
            failures[name] = str(exc)
            continue
        remove_stale(out_dir / "shards" / name, domain.files)
        kept.append(domain)
    _check_enough({d.name: d for d in kept}, failures, required, len(domain_dirs))
    return _write_corpus(out_dir, kept, encoding, key, failures)


def _whole_files(units: list[InputUnit]) -> list[InputUnit]:
    """One unit per file, from a listing that may cut files into ranges: the tokenizer's
    sample must not depend on the shard size, and the folder is not listed again."""
    files: dict[Path, InputUnit] = {}
    for u in units:
        if u.path in files:
            files[u.path] = replace(files[u.path], nbytes=files[u.path].nbytes + u.nbytes)
        else:
            files[u.path] = InputUnit(u.path, u.kind, nbytes=u.nbytes)
    return list(files.values())


def _check_enough(
    ok: Mapping[str, object], failures: dict[str, str], need: int, total: int
) -> None:
    if len(ok) >= need and (need < total or not failures):
        return
    listing = "; ".join(f"{n}: {r}" for n, r in sorted(failures.items())) or "none failed"
    raise DataError(
        f"only {len(ok)} usable domain(s) of {total}, need {'all' if need == total else need}; "
        f"failed: {listing}"
    )


def _encoding(
    units: Mapping[str, tuple[Path, list[InputUnit]]],
    out_dir: Path,
    spec: TokenizerSpec,
    given: GivenTokenizer | None,
    options: PrepOptions,
    say: Log,
    failures: dict[str, str],
) -> Encoding:
    """The tokenizer of the build, saved as ``out_dir/tokenizer.json``. A domain whose sample
    cannot be read is added to ``failures``, and the tokenizer trained without it."""
    path = out_dir / "tokenizer.json"
    if given is not None:
        data = given.path.read_bytes()
        if not path.is_file() or path.read_bytes() != data:
            atomic_write_bytes(path, data)
        eos, n_ids = given.eos_id(spec.eos_token), given.vocab_size
    else:
        assert spec.vocab_size is not None  # checked by prepare_tokens
        described = {n: [u.describe(f) for u in us] for n, (f, us) in sorted(units.items())}
        blob = [described, spec.vocab_size, spec.sample_bytes, options.content()]
        sample_key = hashlib.sha256(json.dumps(blob).encode()).hexdigest()
        key_path = out_dir / "tokenizer.key"
        fresh = not (path.is_file() and key_path.is_file() and key_path.read_text() == sample_key)
        if fresh:
            say(f"training a {spec.vocab_size}-id BPE on {spec.sample_bytes / 1e6:g} MB of text")
            key_path.unlink(missing_ok=True)
            share = max(1, spec.sample_bytes // max(1, len(units)))
            texts: list[str] = []
            for name, (_, domain_units) in sorted(units.items()):
                try:
                    texts += sample_texts(name, domain_units, share, options)
                except DataError as exc:
                    failures[name] = str(exc)
            tok = train_tokenizer(texts, vocab_size=spec.vocab_size)
            atomic_write_bytes(path, tok.to_str().encode("utf-8"))
            atomic_write_bytes(key_path, sample_key.encode())
        tok = load_tokenizer(path).tokenizer
        eos, n_ids = eos_id(tok), tok.get_vocab_size()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Encoding(
        path=str(path), sha256=sha, eos=eos, dtype=token_dtype(n_ids).name, vocab_size=n_ids
    )


def sample_texts(name: str, units: list[InputUnit], share: int, options: PrepOptions) -> list[str]:
    """About ``share`` bytes of one domain's clean documents, from its files in a seeded order
    (so the sample is spread over the domain's files, not its first ones)."""
    rng = np.random.default_rng([options.seed, zlib.crc32(name.encode("utf-8"))])
    out: list[str] = []
    used = 0
    for i in rng.permutation(len(units)):
        for raw in iter_unit_texts(units[i], max_text_bytes=options.max_text_bytes):
            for piece in split_text(raw, max_bytes=options.max_doc_bytes):
                text = clean_text(piece)
                if len(text) >= MIN_DOC_CHARS:
                    used += len(text.encode("utf-8"))
                    out.append(text)
                if used >= share:
                    return out
    return out


def _encode_all(
    jobs: Mapping[str, list[ShardJob]],
    options: PrepOptions,
    failures: dict[str, str],
    say: Log,
    progress_bar: bool,
) -> dict[str, list[ShardResult]]:
    """Every shard's result: read from its marker, or encoded now (in ``options.workers``
    processes). A shard's DataError fails its domain; the other shards still finish."""
    found: dict[tuple[str, int], ShardResult] = {}
    todo: list[ShardJob] = []
    for job in (j for js in jobs.values() for j in js):
        result = read_result(job)
        if result is not None:
            found[job.domain, job.index] = result
        else:
            todo.append(job)
    progress = _Progress(todo, say, progress_bar, done=len(found))
    if options.workers == 1 or len(todo) <= 1:
        for job in todo:
            try:
                found[job.domain, job.index] = progress.update(job, encode_shard(job))
            except DataError as exc:
                failures.setdefault(job.domain, str(exc))
    else:
        ctx = get_context("spawn")
        workers = min(options.workers, len(todo))
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=init_worker, initargs=(os.getpid(),)
        ) as pool:
            pending: dict[Future[ShardResult], ShardJob] = {
                pool.submit(encode_shard, job): job for job in todo
            }
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    try:
                        found[job.domain, job.index] = progress.update(job, future.result())
                    except DataError as exc:
                        failures.setdefault(job.domain, str(exc))
    progress.close()
    return {
        name: [found[name, j.index] for j in js]
        for name, js in jobs.items()
        if name not in failures
    }


class _Progress:
    """Encoded input bytes against the total: a log line at most every ``every`` seconds,
    and a bar on a terminal."""

    def __init__(self, todo: list[ShardJob], say: Log, bar: bool, *, done: int, every: float = 10):
        self.total = sum(j.nbytes for j in todo)
        self.bytes = 0
        self.shards = 0
        self.n = len(todo)
        self.say = say
        self.every = every
        self.start = self.last = time.monotonic()
        self.bar = None
        if todo:
            say(f"encoding {self.n} shard(s), {self.total / 1e6:,.0f} MB ({done} done earlier)")
        if bar and todo and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="B", unit_scale=True, desc="prepare")

    def update(self, job: ShardJob, result: ShardResult) -> ShardResult:
        self.bytes += job.nbytes
        self.shards += 1
        if self.bar is not None:
            self.bar.update(job.nbytes)
        now = time.monotonic()
        if now - self.last >= self.every or self.shards == self.n:
            rate = self.bytes / max(now - self.start, 1e-9)
            eta = (self.total - self.bytes) / max(rate, 1e-9)
            self.say(
                f"encoded {self.shards}/{self.n} shard(s), {self.bytes / 1e6:,.0f}/"
                f"{self.total / 1e6:,.0f} MB, {rate / 1e6:.1f} MB/s, eta {eta:.0f} s"
            )
            self.last = now
        return result

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_corpus(
    out_dir: Path, kept: list[DomainTokens], encoding: Encoding, key: str, failures: dict[str, str]
) -> TokenCorpus:
    rows = []
    for d in kept:
        for split in (*SPLITS, "source"):
            c = d.counts[split]
            rows.append((d.name, split, c.docs, c.bytes, c.tokens, False))
    write_parquet(
        pl.DataFrame(rows, schema=TOKEN_COUNTS_SCHEMA, orient="row"), out_dir / "counts.parquet"
    )
    shards = {d.name: {s: [p.to_json() for p in d.pieces.get(s, [])] for s in SPLITS} for d in kept}
    atomic_write_bytes(out_dir / SHARDS_FILE, json.dumps({"domains": shards}, indent=1).encode())
    # The fingerprint hashes the tokenizer and every split's tokens (``proxies.tokens.
    # view_fingerprint``); the identity is kept so that a run can be named by the splits it reads.
    files = {
        d.name: {s: [out_dir / piece.path for piece in d.pieces.get(s, [])] for s in SPLITS}
        for d in kept
    }
    identity = text_identity(encoding.sha256, encoding.eos, encoding.dtype, files)
    meta = {
        "build_key": key,
        "fingerprint": view_fingerprint(identity, {d.name: set(SPLITS) for d in kept}),
        "identity": identity,
        "source": "text",
        "vocab_size": encoding.vocab_size,
        "eos_id": encoding.eos,
        "dtype": encoding.dtype,
        "domains": [d.name for d in kept],
        "counts_version": COUNTS_VERSION,
        "tokenizer_sha256": encoding.sha256,
        "failed": failures,
        "stats": {
            d.name: {
                "duplicates_removed": d.duplicates,
                "truncated": d.truncated,
                "input_bytes": d.input_bytes,
                "shards": d.n_shards,
            }
            for d in kept
        },
    }
    atomic_write_bytes(out_dir / "tokens.json", json.dumps(meta, indent=2).encode())
    return TokenCorpus.load(out_dir)


def _with_identity(corpus: TokenCorpus) -> TokenCorpus:
    """``corpus``, with its identity written into ``tokens.json`` when it was prepared before
    the identity was kept there: computed once here, not by every run that loads it."""
    if corpus.stored_identity is not None or corpus.identity is None:
        return corpus
    meta_path = corpus.path / "tokens.json"
    meta = {**json.loads(meta_path.read_text()), "identity": corpus.identity}
    atomic_write_bytes(meta_path, json.dumps(meta, indent=2).encode())
    return TokenCorpus.load(corpus.path)


__all__ = ["ShardPiece", "TokenizerSpec", "prepare_tokens", "sample_texts"]
