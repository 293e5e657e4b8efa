"""What an experiment trains: which domains train and which are evaluated, the natural
(token-proportional) mixture, and the sampled mixtures of the sweep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, DataError
from mixtures.mixture import Mixture
from mixtures.sampling import SamplerConfig, sample_mixtures, token_prior


def split_domains(
    corpus_domains: Sequence[str], target_domains: Sequence[str], *, holdout: bool
) -> tuple[list[str], list[str]]:
    """(training domains, evaluated domains). Held-out target domains are evaluated, not trained."""
    unknown = sorted(set(target_domains) - set(corpus_domains))
    if unknown:
        raise ConfigError(
            f"target names domain(s) {unknown} not in the corpus {sorted(corpus_domains)}"
        )
    train = sorted(d for d in corpus_domains if not (holdout and d in target_domains))
    if len(train) < 2:
        raise ConfigError(f"need at least 2 training domains, got {train}")
    return train, sorted(corpus_domains)


def natural_mixture(tokens: Mapping[str, int], domains: Sequence[str]) -> Mixture:
    """Token-proportional weights: what training on everything as it comes would do."""
    counts = np.array([float(tokens[d]) for d in domains])
    if counts.sum() <= 0:
        raise DataError(f"training domains {list(domains)} have no tokens")
    return Mixture.from_array(domains, counts / counts.sum())


def sample_proxy_mixtures(
    n: int,
    *,
    domains: Sequence[str],
    tokens: Mapping[str, int],
    bounds: Bounds,
    sampler: SamplerConfig,
    rng: np.random.Generator,
) -> list[Mixture]:
    """``n`` distinct mixtures from the token-count prior (RegMix) inside the bounds."""
    counts = np.array([float(tokens[d]) for d in domains])
    prior = token_prior(counts, temperature=sampler.temperature)
    x = sample_mixtures(n, prior=prior, bounds=bounds, rng=rng, config=sampler)
    return [Mixture.from_array(domains, row, tolerance=1e-6) for row in x]
