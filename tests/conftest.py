"""Shared fixtures: a tiny synthetic multi-domain corpus, built once per test session, and a real
Prefect server on 127.0.0.1 for the slow tests (started once per session, then stopped; the
function-scoped ``prefect_api`` points one test and the processes it starts at it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

#: Four domains with different statistics, so mixtures change losses measurably.
_VOCABS = {
    "alpha": ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"],
    "beta": [str(i) for i in range(40)],
    "gamma": ["def", "return", "(", ")", ":", "self", "x", "=", "+", "if", "else", "\n    "],
    "delta": ["The", "King", "Queen", "spoke", "unto", "thee", "and", "thou", "art", "LORD"],
}


def write_tiny_domains(root: Path, *, docs: int = 60, words: int = 120, seed: int = 0) -> dict:
    """Folders of .txt documents, one per domain; returns domain -> folder."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, vocab in _VOCABS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(docs):
            text = " ".join(rng.choice(vocab, size=words))
            (folder / f"doc{i:03d}.txt").write_text(f"{name} document {i}\n{text}\n")
        out[name] = folder
    return out


@pytest.fixture(scope="session")
def tiny_domains(tmp_path_factory) -> dict:
    return write_tiny_domains(tmp_path_factory.mktemp("domains"))


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_domains):
    from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens

    root = tmp_path_factory.mktemp("corpus")
    return prepare_tokens(
        tiny_domains,
        root / "tokens",
        tokenizer=TokenizerSpec(vocab_size=300, sample_bytes=200_000),
        options=PrepOptions(val_fraction=0.2, seed=0),
    )


@pytest.fixture(scope="session")
def prefect_server_url(tmp_path_factory) -> Iterator[str]:
    from runtime.server import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as url:
        yield url


@pytest.fixture
def prefect_api(prefect_server_url, tmp_path) -> Iterator[str]:
    from runtime.server import use_server

    with use_server(prefect_server_url, tmp_path / "prefect-home"):
        yield prefect_server_url


@pytest.fixture(scope="session")
def smoke_corpus_dir(tmp_path_factory) -> Path:
    """One smoke corpus cache for every slow test of the session (built on first use)."""
    return tmp_path_factory.mktemp("smoke-corpus")
