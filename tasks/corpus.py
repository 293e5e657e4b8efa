"""Prefect tasks of the corpus build: sources -> documents -> tokens."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from proxies.documents import prepare_documents
from proxies.sources import build_sources
from proxies.tokens import build_token_arrays


@task(name="build-sources", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def build_sources_task(
    raw_dir: str, domains: list[str], cap_bytes: int, install: bool
) -> dict[str, str]:
    """Extract the default sources; returns domain -> folder of the ones that could be had."""
    logger = get_run_logger()
    results = build_sources(
        Path(raw_dir), domains=domains, cap_bytes=cap_bytes, install=install, log=logger.info
    )
    for r in results:
        if not r.ok:
            logger.warning("domain %s unavailable: %s", r.domain, r.reason)
    return {r.domain: str(r.path) for r in results if r.ok and r.path is not None}


@task(name="prepare-documents", cache_policy=NO_CACHE)
def prepare_documents_task(
    domain_dirs: dict[str, str],
    docs_dir: str,
    *,
    cap_bytes: int,
    val_fraction: float,
    min_domains: int,
) -> dict:
    manifest = prepare_documents(
        {k: Path(v) for k, v in domain_dirs.items()},
        Path(docs_dir),
        cap_bytes=cap_bytes,
        val_fraction=val_fraction,
        seed=0,
        min_domains=min_domains,
    )
    return manifest.to_json()


@task(name="tokenize", cache_policy=NO_CACHE)
def tokenize_task(
    docs_dir: str,
    tokens_dir: str,
    *,
    domains: list[str],
    fingerprint: str,
    vocab_size: int,
    sample_bytes: int,
) -> str:
    corpus = build_token_arrays(
        Path(docs_dir),
        Path(tokens_dir),
        domains=domains,
        docs_fingerprint=fingerprint,
        vocab_size=vocab_size,
        sample_bytes=sample_bytes,
    )
    get_run_logger().info("token corpus %s: %s", corpus.fingerprint, corpus.tokens("train"))
    return str(corpus.path)
