"""What a preparation does, before any of it runs: its options, the input shards of each domain
(consecutive input units of about ``shard_bytes``), and the content keys that let a rerun keep
every shard already encoded."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixtures.errors import ConfigError
from proxies.documents.reading import MAX_TEXT_BYTES, InputUnit, check_doc_bytes, plan_units

#: Version of the cleaning, splitting and encoding rules: a change moves every shard key.
PREP_VERSION = 1
MIN_DOC_CHARS = 64
"""Documents shorter than this after cleaning are dropped: too short to carry domain signal
(headers, empty stubs) and they would only add separator tokens."""
SPLITS = ("train", "val")
_DOMAIN_NAME = re.compile(r"[a-z0-9_]+")
_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class PrepOptions:
    """How documents are cut, selected and split. ``cap_bytes`` None keeps every document;
    ``workers`` and ``shard_bytes`` change only the speed, never the result."""

    val_fraction: float = 0.05
    seed: int = 0
    cap_bytes: int | None = None
    max_doc_bytes: int = 16_000
    max_text_bytes: int = MAX_TEXT_BYTES
    shard_bytes: int = 64_000_000
    workers: int = 1

    def check(self) -> None:
        if self.cap_bytes is not None and self.cap_bytes <= 0:
            raise ConfigError(f"cap_bytes must be > 0, got {self.cap_bytes}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check_doc_bytes(self.max_doc_bytes)
        if self.max_text_bytes < self.max_doc_bytes:
            raise ConfigError(
                f"max_text_bytes ({self.max_text_bytes}) must be >= max_doc_bytes "
                f"({self.max_doc_bytes})"
            )
        if self.shard_bytes < 1 or self.workers < 1:
            raise ConfigError(
                f"shard_bytes and workers must be >= 1, got {self.shard_bytes}, {self.workers}"
            )

    def content(self) -> dict[str, Any]:
        """The options that change what a shard holds."""
        return {
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "max_doc_bytes": self.max_doc_bytes,
            "max_text_bytes": self.max_text_bytes,
            "min_doc_chars": MIN_DOC_CHARS,
            "version": PREP_VERSION,
        }


@dataclass(frozen=True)
class Encoding:
    """The tokenizer every shard is encoded with: its file, content hash, EOS id, dtype and
    id space."""

    path: str
    sha256: str
    eos: int
    dtype: str
    vocab_size: int


@dataclass(frozen=True)
class ShardJob:
    """One input shard of one domain: the units to read and where its outputs go (``prefix``
    plus ``.train.bin``, ``.val.bin``, ``.docs.npz`` and, written last, ``.json``)."""

    domain: str
    index: int
    root: Path
    units: tuple[InputUnit, ...]
    key: str
    prefix: Path
    encoding: Encoding
    options: PrepOptions
    nbytes: int = field(default=0)

    @property
    def marker(self) -> Path:
        return self.prefix.with_name(self.prefix.name + ".json")

    def output(self, suffix: str) -> Path:
        return self.prefix.with_name(f"{self.prefix.name}.{suffix}")


def check_domains(domain_dirs: Mapping[str, Path]) -> None:
    for name in domain_dirs:
        if not isinstance(name, str) or not _DOMAIN_NAME.fullmatch(name):
            raise ConfigError(f"domain name {name!r} is invalid: expected [a-z0-9_]+")


def plan_domain(
    name: str, folder: Path, out_dir: Path, encoding: Encoding, options: PrepOptions
) -> list[ShardJob]:
    """The shards of one domain, in reading order; DataError when its folder is unusable."""
    folder = Path(folder).resolve()
    units = plan_units(folder, unit_bytes=options.shard_bytes)
    groups: list[list[InputUnit]] = [[]]
    size = 0
    for unit in units:
        if groups[-1] and size + unit.nbytes > options.shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append(unit)
        size += unit.nbytes
    jobs = []
    for i, group in enumerate(groups):
        blob = [[u.describe(folder) for u in group], encoding.sha256, encoding.eos, encoding.dtype]
        key = _sha(json.dumps([blob, options.content()]))[:16]
        jobs.append(
            ShardJob(
                domain=name,
                index=i,
                root=folder,
                units=tuple(group),
                key=key,
                prefix=out_dir / "shards" / name / f"{i:05d}-{key}",
                encoding=encoding,
                options=options,
                nbytes=sum(u.nbytes for u in group),
            )
        )
    return jobs


def input_stamp(jobs: Mapping[str, list[ShardJob]], options: PrepOptions) -> str:
    """Key of a whole build: every shard's key, and the options applied across shards."""
    keys = {d: [j.key for j in js] for d, js in sorted(jobs.items())}
    return _sha(json.dumps([keys, options.content(), options.cap_bytes]))


def mix64(x: np.ndarray, seed: int) -> np.ndarray:
    """SplitMix64 of ``x + seed``: a seeded, well-spread uint64 per input."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) & _MASK)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def unit_interval(x: np.ndarray) -> np.ndarray:
    """uint64 -> float64 in [0, 1)."""
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
