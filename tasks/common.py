"""Small helpers shared by tasks: experiment paths, git sha, atomic JSON."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from configs.schema import CorpusConfig, ExperimentConfig


def experiment_dir(config: ExperimentConfig, override: str | None) -> Path:
    return Path(override) if override else Path("runs") / config.name


def corpus_key(corpus: CorpusConfig) -> str:
    """Content key of a corpus build: every setting that changes its bytes, nothing else."""
    data = corpus.model_dump(mode="json", exclude={"cache_dir", "install", "min_domains"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


@functools.cache  # one subprocess per process, not one per proxy run
def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path
