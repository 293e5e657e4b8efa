"""The corpus section of the experiment config: where the domains come from (extracted sources,
your folders, your token files) and how they are cleaned, split and tokenized."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from proxies.shard_files import RawDtype
from proxies.token_files import TokenDomainFiles
from proxies.tokenizer import DEFAULT_TRAINED_VOCAB, MAX_TRAINED_VOCAB

#: Clean text kept per domain of the default and smoke sources when the config names no cap.
DEFAULT_CAP_MB = 6.0
#: Most worker processes used when ``workers`` is null.
MAX_AUTO_WORKERS = 8

#: Domain and experiment names: lower-case letters, digits and underscores, nothing else.
NAME = re.compile(r"[a-z0-9_]+")


class Strict(BaseModel):
    """A config section: unknown keys are errors, values never change after loading, and a
    number is finite (YAML's .inf and .nan are typos here, never settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CorpusConfig(Strict):
    """Where the domains come from and how they are cleaned, split and tokenized: text that
    mixopt tokenizes (``default``, ``smoke``, ``folders``), or token files used in place
    (``tokens``)."""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        # filled in where they apply, so the saved config names the values used
        if not isinstance(data, dict):
            return data
        source = data.get("source", "default")
        if data.get("vocab_size") is None and data.get("tokenizer") is None and source != "tokens":
            data = {**data, "vocab_size": DEFAULT_TRAINED_VOCAB}
        if "cap_mb" not in data and source in ("default", "smoke"):
            data = {**data, "cap_mb": DEFAULT_CAP_MB}
        return data

    source: Literal["default", "smoke", "folders", "tokens"] = Field(
        "default",
        description="default: real domains from Debian/PyPI packages; smoke: a tiny set built in "
        "seconds from the venv's own files; folders: your folders (see `folders`); tokens: your "
        "token files, used in place (see `token_domains`)",
    )
    domains: list[str] | None = Field(
        None, description="subset of the source's domains to use; null = all of them"
    )
    folders: dict[str, Path] = Field(
        default_factory=dict,
        description="source=folders: domain name -> folder of .txt/.md/.jsonl/.parquet files "
        "(.txt, .md and .jsonl may be gzipped)",
    )
    token_domains: dict[str, TokenDomainFiles] = Field(
        default_factory=dict,
        description="source=tokens: domain name -> {train: [...], val: [...]}, each entry a "
        ".bin/.npy file, a folder of them or a glob pattern; without `val` the last "
        "`val_fraction` of the domain's tokens is held out",
    )
    cap_mb: float | None = Field(
        None,
        gt=0,
        description="cap per domain (train + val), MB of clean text; null = every document "
        f"(the default for folders; default and smoke sources: {DEFAULT_CAP_MB:g})",
    )
    workers: int | None = Field(
        None,
        ge=1,
        description="processes that clean and tokenize text in parallel (null = one per CPU "
        "core, at most 8); changes the speed only, never the tokens",
    )
    shard_mb: float = Field(
        64.0,
        gt=0,
        description="input MB per shard: the unit of work of a worker and of resuming a "
        "killed preparation; changes the speed only, never the tokens",
    )
    max_text_mb: float = Field(
        64.0,
        gt=0,
        description="largest single text (a .txt/.md file or a JSON line) after "
        "decompression; a larger one is an error naming the file",
    )
    val_fraction: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="validation share: by document for text; for token files without `val`, "
        "the share of the domain's tokens taken from its end",
    )
    min_domains: int = Field(
        3,
        ge=2,
        description="default and smoke sources: stop with an error below this many usable "
        "domains (with source=folders every named domain must be usable)",
    )
    install: bool = Field(
        True,
        description="download missing sources (default source) with apt-get and pip; an "
        "apt-get update, when a package list is missing, needs root",
    )
    vocab_size: int | None = Field(
        None,
        gt=0,
        description="trained tokenizer: the byte-level BPE's vocabulary, at most 65535 (null = "
        f"{DEFAULT_TRAINED_VOCAB}); with `tokenizer`: null, or the tokenizer's (checked); "
        "source=tokens: the id space of the files, every id below it (null = the tokenizer's)",
    )
    tokenizer_sample_mb: float = Field(8.0, gt=0, description="text sampled to train the tokenizer")
    tokenizer: Path | None = Field(
        None,
        description="your tokenizer: a tokenizer.json file, or a transformers folder holding "
        "one, used instead of training a BPE (text sources) or for decoding (tokens); its "
        "content hash is part of the corpus fingerprint",
    )
    eos_token: str | None = Field(
        None,
        description="with `tokenizer`: the token written between documents; null = the "
        "folder's configured eos_token, else the first of <|endoftext|>, </s>, "
        "<|end_of_text|>, <eos> that the tokenizer has",
    )
    eos_id: int | None = Field(
        None,
        ge=0,
        description="source=tokens: the id that separates documents in the files (null = the "
        "tokenizer's EOS)",
    )
    token_dtype: RawDtype | None = Field(
        None,
        description="source=tokens: dtype of flat token files (.bin, and .npy without a "
        "header); .npy files with a header carry their own",
    )
    cache_dir: Path = Field(
        Path("runs/_corpus"), description="corpus builds, shared by experiments, keyed by content"
    )

    def key(self) -> str:
        """Content key of a corpus build: every setting that changes its bytes, nothing else.

        Optional settings at their empty default are left out, so that adding one never moves
        the builds made without it."""
        operational = {"cache_dir", "install", "min_domains", "workers", "shard_mb"}
        data = self.model_dump(mode="json", exclude=operational)
        for name in ("token_domains", "tokenizer", "eos_token", "eos_id", "token_dtype", "cap_mb"):
            if data[name] in (None, {}):
                del data[name]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def build_dir(self) -> Path:
        """Folder of this build's documents (``docs/``) and token arrays (``tokens/``)."""
        return self.cache_dir / f"{self.source}-{self.key()}"

    @property
    def raw_dir(self) -> Path:
        """Folder of the extracted text of the default and smoke sources."""
        return self.cache_dir / f"raw-{self.source}-{self.cap_mb or DEFAULT_CAP_MB:g}mb"

    @property
    def cap_bytes(self) -> int | None:
        return None if self.cap_mb is None else int(self.cap_mb * 1_000_000)

    def n_workers(self) -> int:
        """``workers``, or one per CPU core (at most ``MAX_AUTO_WORKERS``)."""
        if self.workers is not None:
            return self.workers
        return max(1, min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0))))

    @property
    def scan_cache(self) -> Path:
        """Folder of the cached scans of token files (one record per file, shared by builds)."""
        return self.cache_dir / "_token_scans"

    @model_validator(mode="after")
    def _check(self) -> CorpusConfig:
        if self.source == "folders" and not self.folders:
            raise ValueError("source is 'folders' but `folders` is empty")
        names = list(self.folders) + list(self.token_domains) + list(self.domains or [])
        for name in names:
            if not NAME.fullmatch(name):
                raise ValueError(f"domain name {name!r} must match [a-z0-9_]+")
        if self.source == "tokens":
            self._check_tokens()
        else:
            for name in ("token_domains", "eos_id", "token_dtype"):
                if getattr(self, name):
                    raise ValueError(f"`{name}` applies to source 'tokens', not {self.source!r}")
            vocab = self.vocab_size
            if (
                self.tokenizer is None
                and vocab is not None
                and not 256 < vocab <= MAX_TRAINED_VOCAB
            ):
                raise ValueError(
                    f"vocab_size of the trained BPE must be in (256, {MAX_TRAINED_VOCAB}], "
                    f"got {self.vocab_size}"
                )
        if self.eos_token is not None and self.tokenizer is None:
            raise ValueError("`eos_token` names a token of `tokenizer`, which is not set")
        return self

    def _check_tokens(self) -> None:
        if not self.token_domains:
            raise ValueError("source is 'tokens' but `token_domains` is empty")
        if self.folders:
            raise ValueError("`folders` applies to source 'folders', not 'tokens'")
        if self.cap_mb is not None:
            raise ValueError("`cap_mb` applies to text sources, not 'tokens' (used whole)")
        if self.tokenizer is None:
            for name in ("vocab_size", "eos_id"):
                if getattr(self, name) is None:
                    raise ValueError(f"source 'tokens' needs `{name}` (or `tokenizer`)")
        if (
            self.eos_id is not None
            and self.vocab_size is not None
            and self.eos_id >= self.vocab_size
        ):
            raise ValueError(f"eos_id {self.eos_id} must be below vocab_size {self.vocab_size}")
