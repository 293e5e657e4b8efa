"""A real Prefect server on 127.0.0.1 for the slow tests: started once per session, then stopped.

Function-scoped ``prefect_api`` points one test (and the processes it starts) at it and restores
the settings afterwards, so tests that use the temporary local server are not affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


@pytest.fixture(scope="session")
def prefect_server_url(tmp_path_factory) -> Iterator[str]:
    from flows.server import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as url:
        yield url


@pytest.fixture
def prefect_api(prefect_server_url, tmp_path) -> Iterator[str]:
    from flows.server import use_server

    with use_server(prefect_server_url, tmp_path / "prefect-home"):
        yield prefect_server_url


@pytest.fixture(scope="session")
def smoke_corpus_dir(tmp_path_factory) -> Path:
    """One smoke corpus cache for every slow test of the session (built on first use)."""
    return tmp_path_factory.mktemp("smoke-corpus")
