"""Prefect tasks of the corpus build: sources -> token files, or the user's token files indexed
in place."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from configs.corpus import DEFAULT_CAP_MB
from configs.schema import CorpusConfig
from mixtures.errors import ConfigError
from proxies.prepare import PrepOptions, TokenizerSpec, prepare_tokens
from proxies.sources import DEFAULT_DOMAINS, SMOKE_DOMAINS, build_sources
from proxies.token_files import TokenSourceSpec, build_token_files
from runtime.placement import retry_unless_deterministic

MB = 1_000_000


def source_domains(c: CorpusConfig) -> list[str]:
    """The domains the config asks for: ``domains``, else all of its source's."""
    given = {"folders": tuple(c.folders), "tokens": tuple(c.token_domains)}
    known = {"default": DEFAULT_DOMAINS, "smoke": SMOKE_DOMAINS, **given}[c.source]
    return list(c.domains) if c.domains is not None else list(known)


def source_folders(c: CorpusConfig) -> dict[str, str] | None:
    """``source: folders``: domain -> the user's folder; None for sources mixopt extracts."""
    if c.source != "folders":
        return None
    domains = source_domains(c)
    missing = sorted(set(domains) - set(c.folders))
    if missing:
        raise ConfigError(f"corpus.domains names {missing}, not in corpus.folders")
    return {d: str(c.folders[d]) for d in domains}


@task(
    name="build-sources",
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_deterministic,  # a config or data error recurs: no retry
    cache_policy=NO_CACHE,
)
def build_sources_task(c: CorpusConfig) -> dict[str, str]:
    """Extract the default sources; returns domain -> folder of the ones that could be had."""
    logger = get_run_logger()
    results = build_sources(
        c.raw_dir,
        domains=source_domains(c),
        cap_bytes=int((c.cap_mb or DEFAULT_CAP_MB) * MB),
        install=c.install,
        log=logger.info,
    )
    for r in results:
        if not r.ok:
            logger.warning("domain %s unavailable: %s", r.domain, r.reason)
    return {r.domain: str(r.path) for r in results if r.ok and r.path is not None}


@task(name="prepare-tokens", cache_policy=NO_CACHE)
def prepare_tokens_task(c: CorpusConfig, domain_dirs: dict[str, str]) -> str:
    """Clean, dedup, cap, split and tokenize every domain, streamed in worker processes and
    resumable by shard. Your folders must all be usable (a domain you named is never dropped);
    of the extracted sources, ``min_domains`` must be."""
    logger = get_run_logger()
    corpus = prepare_tokens(
        {k: Path(v) for k, v in domain_dirs.items()},
        c.build_dir / "tokens",
        tokenizer=TokenizerSpec(
            path=c.tokenizer,
            eos_token=c.eos_token,
            vocab_size=c.vocab_size,
            sample_bytes=int(c.tokenizer_sample_mb * MB),
        ),
        options=PrepOptions(
            val_fraction=c.val_fraction,
            seed=0,
            cap_bytes=c.cap_bytes,
            max_text_bytes=int(c.max_text_mb * MB),
            shard_bytes=int(c.shard_mb * MB),
            workers=c.n_workers(),
        ),
        min_domains=None if c.source == "folders" else c.min_domains,
        log=logger.info,
        progress_bar=True,  # on a terminal only
    )
    logger.info("token corpus %s: %s", corpus.fingerprint, corpus.tokens("train"))
    return str(corpus.path)


def token_source(c: CorpusConfig) -> TokenSourceSpec:
    """``source: tokens``: the token files of the domains the config asks for."""
    domains = source_domains(c)
    missing = sorted(set(domains) - set(c.token_domains))
    if missing:
        raise ConfigError(f"corpus.domains names {missing}, not in corpus.token_domains")
    return TokenSourceSpec(
        domains={d: c.token_domains[d] for d in domains},
        vocab_size=c.vocab_size,
        eos_id=c.eos_id,
        token_dtype=c.token_dtype,
        val_fraction=c.val_fraction,
        tokenizer=c.tokenizer,
        eos_token=c.eos_token,
    )


@task(name="index-token-files", cache_policy=NO_CACHE)
def token_files_task(c: CorpusConfig) -> str:
    """Check and index the user's token files in place (no copy, no re-tokenizing)."""
    corpus = build_token_files(token_source(c), c.build_dir / "tokens", scan_cache=c.scan_cache)
    get_run_logger().info("token corpus %s: %s", corpus.fingerprint, corpus.tokens("train"))
    return str(corpus.path)
