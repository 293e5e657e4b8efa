"""The runs an experiment's config asks for, and the number each run is judged by.

Random streams: one ``SeedSequence`` spawn key per use of the experiment seed, so that changing
one part (e.g. the number of sweep runs) never shifts another part's random numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from configs.experiment import Plan
from configs.schema import ExperimentConfig
from mixtures.constraints import Bounds
from mixtures.errors import ConfigError, DataError
from mixtures.mixture import Mixture
from proxies.merge_spec import MergeSpec, experts_fingerprint
from proxies.planning import natural_mixture, sample_proxy_mixtures, split_domains
from proxies.records import target_fn
from proxies.runs import RunSpec
from proxies.tokens import SOURCE, TokenCorpus

#: SeedSequence spawn key of the sweep's sampler (the search uses mixtures.search.SEARCH_STREAM).
SWEEP_STREAM = 1
#: SeedSequence spawn key of the candidate mixtures whose merged models are evaluated.
MERGE_STREAM = 3


def seed_stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def make_plan(config: ExperimentConfig, corpus: TokenCorpus) -> Plan:
    """Fix the training and evaluated domains, the weight bounds and the baselines once.

    Token counts are those of each domain's whole source, not of the capped share the proxies
    train on: they set the prior, the natural mixture and, against the production run's budget,
    the repetition bound.
    """
    t = config.target
    domains = list(corpus.domains)
    train, evald = split_domains(domains, t.target_domains(domains), holdout=t.holdout)
    tokens = corpus.tokens(SOURCE)
    estimated = corpus.estimated()
    budget = config.sweep.production_tokens or config.target_run.train.train_tokens
    try:
        bounds = Bounds.build(
            train,
            min_weight=config.sweep.min_weight,
            max_weight=config.sweep.max_weight,
            tokens_available=tokens,
            token_budget=budget,
            max_epochs=config.sweep.max_epochs,
        )
    except ConfigError as err:
        if config.sweep.max_epochs is None:
            raise
        # the config's bounds alone were checked before the corpus was built: the repetition
        # cap is what the token counts add
        raise ConfigError(
            f"{err}; sweep.max_epochs {config.sweep.max_epochs:g} caps each domain at its "
            f"tokens x max_epochs / {budget} production tokens (sweep.production_tokens, else "
            "target_run.train.train_tokens): raise max_epochs or lower that budget"
        ) from None
    return Plan(
        tokens_dir=str(corpus.path),
        corpus_fingerprint=corpus.fingerprint,
        train_domains=train,
        eval_domains=evald,
        tokens={d: tokens[d] for d in train},
        tokens_estimated={d: estimated[d] for d in train},
        production_tokens=budget,
        lower=bounds.lower.tolist(),
        upper=bounds.upper.tolist(),
        baselines={
            "uniform": dict(Mixture.uniform(train)),
            "natural": dict(natural_mixture(tokens, train)),
        },
    )


def check_init_models(config: ExperimentConfig, corpus: TokenCorpus) -> None:
    """Every ``init_from`` of the config (proxy, search.bo_proxy, target_run.train) against its
    section's model shape and the corpus's vocabulary and tokenizer, before anything trains: a
    DataError naming the section, the folder and what differs."""
    sections = {
        "proxy": config.proxy,
        "search.bo_proxy": config.search.bo_proxy,
        "target_run.train": config.target_run.train,
    }
    wanted = {k: v for k, v in sections.items() if v is not None and v.init_from is not None}
    if not wanted:
        return
    from proxies.model import check_init_folder  # torch: only when a model is given

    tokenizer = corpus.path / "tokenizer.json"
    sha = hashlib.sha256(tokenizer.read_bytes()).hexdigest() if tokenizer.is_file() else None
    for section, train in wanted.items():
        try:
            check_init_folder(
                str(train.init_from),
                shape=train.shape,
                vocab_size=corpus.vocab_size,
                tokenizer_sha256=sha,
            )
        except DataError as err:
            raise DataError(f"{section}.{err}") from None


def sweep_specs(
    config: ExperimentConfig, plan: Plan, corpus: TokenCorpus
) -> list[tuple[str, RunSpec]]:
    """The sweep's (label, spec) pairs: sampled mixtures plus, optionally, the baselines."""
    mixtures = sample_proxy_mixtures(
        config.sweep.n_runs,
        domains=plan.train_domains,
        tokens=plan.tokens,
        bounds=plan.bounds(),
        sampler=config.sweep.sampler,
        rng=seed_stream(config.seed, SWEEP_STREAM),
    )
    labelled = [(f"mix{i:03d}", m) for i, m in enumerate(mixtures)]
    if config.sweep.include_baselines:
        labelled += [(k, Mixture(v)) for k, v in plan.baselines.items()]
    # Every proxy shares the experiment seed (common random numbers: same initialisation and
    # batch stream), so differences between runs come from the mixture, not from noise.
    return [
        (
            label,
            RunSpec.for_mixture(
                m,
                kind="proxy",
                corpus=corpus,
                train_domains=plan.train_domains,
                eval_domains=plan.eval_domains,
                train=config.proxy,
                seed=config.seed,
                evaluator=config.target.evaluator_ref(),
            ),
        )
        for label, m in labelled
    ]


def merge_spec(config: ExperimentConfig, plan: Plan, corpus: TokenCorpus) -> MergeSpec:
    """The trunk and experts ``search.merge`` asks for: the proxy's training config and the
    experiment seed, the trunk on the uniform or natural mixture."""
    merge = config.search.merge
    if merge is None:
        raise ConfigError("search.merge is not set: there are no experts to train")
    trunk = plan.baselines["uniform"] if merge.trunk_mixture == "uniform" else _natural(plan)
    return MergeSpec(
        corpus=experts_fingerprint(corpus, plan.train_domains),
        domains=tuple(plan.train_domains),
        trunk_weights=tuple(float(trunk[d]) for d in plan.train_domains),
        trunk_fraction=merge.trunk_fraction,
        train=config.proxy,
        seed=config.seed,
    )


def _natural(plan: Plan) -> dict[str, float]:
    return dict(natural_mixture(plan.tokens, plan.train_domains))


def merge_candidates(config: ExperimentConfig, plan: Plan) -> list[Mixture]:
    """``search.merge.candidates`` mixtures from the sweep's prior and bounds, on their own
    random stream (changing the sweep never changes them)."""
    merge = config.search.merge
    if merge is None:
        raise ConfigError("search.merge is not set: there are no candidates to merge")
    return sample_proxy_mixtures(
        merge.candidates,
        domains=plan.train_domains,
        tokens=plan.tokens,
        bounds=plan.bounds(),
        sampler=config.sweep.sampler,
        rng=seed_stream(config.seed, MERGE_STREAM),
    )


def target_specs(
    config: ExperimentConfig,
    plan: Plan,
    corpus: TokenCorpus,
    mixtures: Mapping[str, Mapping[str, float]],
) -> list[tuple[str, RunSpec]]:
    """One target-scale run per (mixture, seed)."""
    runs = []
    for name, weights in mixtures.items():
        mixture = Mixture(weights, domains=plan.train_domains, tolerance=1e-4, normalize=True)
        for seed in config.target_run.seeds:
            spec = RunSpec.for_mixture(
                mixture,
                kind="target",
                corpus=corpus,
                train_domains=plan.train_domains,
                eval_domains=plan.eval_domains,
                train=config.target_run.train,
                seed=seed,
                evaluator=config.target.evaluator_ref(),
            )
            runs.append((name, spec))
    return runs


def target_value_fn(config: ExperimentConfig, plan: Plan) -> Callable[[Mapping[str, Any]], float]:
    """The config's target as a function of a run's result (``proxies.records.target_fn``)."""
    t = config.target
    return target_fn(
        t.kind,
        domain=t.domain,
        weights=t.weights,
        eval_domains=plan.eval_domains,
        evaluator=t.evaluator,
    )
