"""Flow: build (or reuse) the corpus: sources -> clean documents -> tokenizer and token arrays."""

from __future__ import annotations

from prefect import flow, get_run_logger

from configs.schema import ExperimentConfig
from mixtures.errors import ConfigError
from proxies.sources import DEFAULT_DOMAINS, SMOKE_DOMAINS
from tasks.common import corpus_key
from tasks.corpus import build_sources_task, prepare_documents_task, tokenize_task

MB = 1_000_000


def _source_domains(config: ExperimentConfig) -> list[str]:
    c = config.corpus
    known = {"default": DEFAULT_DOMAINS, "smoke": SMOKE_DOMAINS}.get(c.source, tuple(c.folders))
    return list(c.domains) if c.domains is not None else list(known)


@flow(name="prepare_corpus", log_prints=True)
def prepare_corpus(config: ExperimentConfig) -> str:
    """Build the corpus the config describes; returns the token folder. Reuses finished work."""
    c = config.corpus
    cap = int(c.cap_mb * MB)
    root = c.cache_dir / f"{c.source}-{corpus_key(c)}"
    domains = _source_domains(config)
    if c.source == "folders":
        missing = sorted(set(domains) - set(c.folders))
        if missing:
            raise ConfigError(f"corpus.domains names {missing}, not in corpus.folders")
        dirs = {d: str(c.folders[d]) for d in domains}
    else:
        raw = c.cache_dir / f"raw-{c.source}-{c.cap_mb:g}mb"
        dirs = build_sources_task(str(raw), domains, cap, c.install)
    manifest = prepare_documents_task(
        dirs,
        str(root / "docs"),
        cap_bytes=cap,
        val_fraction=c.val_fraction,
        min_domains=c.min_domains,
    )
    tokens = tokenize_task(
        str(root / "docs"),
        str(root / "tokens"),
        domains=sorted(dirs),
        fingerprint=manifest["fingerprint"],
        vocab_size=c.vocab_size,
        sample_bytes=int(c.tokenizer_sample_mb * MB),
    )
    get_run_logger().info("corpus ready at %s", tokens)
    return tokens
