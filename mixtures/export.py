"""The chosen mixture in the formats other trainers read.

- Hugging Face ``datasets.interleave_datasets(datasets, probabilities=...)``: a list of
  probabilities in the order of the user's dataset list.
- OLMo-core: a ``SourceMixtureList``-shaped YAML (``sources`` of ``source_name``,
  ``target_ratio``, ``paths``, ``max_repetition_ratio``, ``max_source_fraction``).
- Megatron-LM: the ``--data-path`` value ``"w1 prefix1 w2 prefix2 ..."``.
- RegMix / lit-gpt: the ``train:`` / ``valid:`` / ``model_name`` YAML of sail-sg/regmix's
  ``mixture_config`` files (``data/regmix/regmix.yaml`` is one).

Pure functions, no Prefect; ``export_all`` writes every format into one folder.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mixtures.errors import ConfigError
from mixtures.io import atomic_write_text
from mixtures.mixture import Mixture

#: Digits of the weights written into the Megatron string: 1e-10 keeps the sum within 1e-9 of 1,
#: and Megatron renormalizes the weights it reads anyway.
MEGATRON_DIGITS = 10
#: File names written by ``export_all``, by format.
FILE_NAMES = {
    "hf": "hf_interleave.json",
    "olmo": "olmo_source_mixture.yaml",
    "megatron": "megatron_data_path.txt",
    "regmix": "regmix.yaml",
}


def as_mixture(mixture: Mixture | Mapping[str, float]) -> Mixture:
    """Validate a plain mapping as a mixture; a ``Mixture`` passes through."""
    return mixture if isinstance(mixture, Mixture) else Mixture(mixture)


def _exact(weights: Sequence[float]) -> list[float]:
    # numpy's Generator.choice (used by interleave_datasets) rejects probabilities whose sum is
    # off 1 by more than ~1e-8; a Mixture is only checked to 1e-6, so divide by the exact sum.
    total = math.fsum(weights)
    return [w / total for w in weights]


def interleave_probabilities(
    mixture: Mixture | Mapping[str, float], order: Sequence[str]
) -> list[float]:
    """Probabilities for ``interleave_datasets`` in the order of ``order`` (the dataset list).

    ``order`` must name each domain at most once, only domains of the mixture, and every domain
    with a positive weight (a dataset left out would silently change the mixture).
    """
    mix = as_mixture(mixture)
    dupes = sorted({d for d in order if list(order).count(d) > 1})
    if dupes:
        raise ConfigError(f"dataset order names {dupes} more than once: {list(order)}")
    unknown = sorted(set(order) - set(mix))
    if unknown:
        raise ConfigError(f"dataset order names {unknown}, not domains of the mixture {list(mix)}")
    missing = sorted(d for d, w in mix.items() if w > 0 and d not in set(order))
    if missing:
        raise ConfigError(
            f"dataset order {list(order)} leaves out {missing}, which have positive weight"
        )
    return _exact([mix[d] for d in order])


def _positive(mix: Mixture) -> dict[str, float]:
    kept = {d: w for d, w in mix.items() if w > 0}
    return dict(zip(kept, _exact(list(kept.values())), strict=True))


def _locations(
    domains: Sequence[str], given: Mapping[str, Any] | None, template: str, what: str
) -> dict[str, Any]:
    if given is None:
        return {d: template.format(domain=d) for d in domains}
    missing = sorted(set(domains) - set(given))
    if missing:
        raise ConfigError(f"{what} has no entry for domain(s) {missing} (given: {sorted(given)})")
    return {d: given[d] for d in domains}


def olmo_source_mixture(
    mixture: Mixture | Mapping[str, float],
    *,
    paths: Mapping[str, Sequence[str]] | None = None,
    path_template: str = "{domain}/*.npy",
    tokens_available: Mapping[str, int] | None = None,
    requested_tokens: int | None = None,
) -> dict[str, Any]:
    """An OLMo-core ``SourceMixtureList``: ``{"sources": [{source_name, target_ratio, ...}]}``.

    Domains with weight 0 are left out (OLMo-core needs a positive ratio and at least one path).
    ``paths`` maps domain -> token-file paths or globs; by default one glob from
    ``path_template``. With ``tokens_available`` and ``requested_tokens``,
    ``max_repetition_ratio`` is the repetition the mixture needs (at least 1), so OLMo-core does
    not stop with "insufficient tokens"; otherwise it is 1 (no repetition).
    """
    weights = _positive(as_mixture(mixture))
    if (tokens_available is None) != (requested_tokens is None):
        raise ConfigError("give both tokens_available and requested_tokens, or neither")
    located = _locations(list(weights), paths, path_template, "paths")
    sources = []
    for domain, ratio in weights.items():
        where = located[domain]
        repetition = 1.0
        if tokens_available is not None and requested_tokens is not None:
            available = tokens_available.get(domain, 0)
            if available <= 0:
                raise ConfigError(f"tokens_available[{domain!r}] is {available}, expected > 0")
            repetition = max(1.0, ratio * requested_tokens / available)
        sources.append(
            {
                "source_name": domain,
                "target_ratio": ratio,
                "paths": [where] if isinstance(where, str) else list(where),
                "max_repetition_ratio": repetition,
                "max_source_fraction": 1.0,
            }
        )
    return {"sources": sources}


def megatron_data_path(
    mixture: Mixture | Mapping[str, float],
    *,
    prefixes: Mapping[str, str] | None = None,
    prefix_template: str = "{domain}_text_document",
) -> str:
    """Megatron-LM's ``--data-path`` blend: ``"w1 prefix1 w2 prefix2 ..."``, zero weights left out.

    ``prefixes`` maps domain -> the indexed-dataset prefix (``.bin``/``.idx`` without suffix);
    by default ``prefix_template`` names the output of Megatron's ``preprocess_data.py``.
    """
    weights = _positive(as_mixture(mixture))
    located = _locations(list(weights), prefixes, prefix_template, "prefixes")
    for domain, prefix in located.items():
        if not prefix or any(c.isspace() for c in prefix):
            raise ConfigError(f"prefix of {domain!r} must be non-empty without spaces: {prefix!r}")
    return " ".join(f"{w:.{MEGATRON_DIGITS}g} {located[d]}" for d, w in weights.items())


def parse_megatron_data_path(text: str) -> dict[str, float]:
    """Prefix -> weight of a ``--data-path`` blend string (the inverse, for checks)."""
    parts = text.split()
    if not parts or len(parts) % 2:
        raise ConfigError(f"--data-path blend needs weight/prefix pairs, got {text!r}")
    try:
        return {parts[i + 1]: float(parts[i]) for i in range(0, len(parts), 2)}
    except ValueError:
        raise ConfigError(
            f"--data-path blend has a weight that is not a number: {text!r}"
        ) from None


def regmix_config(
    mixture: Mixture | Mapping[str, float],
    *,
    valid_domains: Sequence[str] = (),
    model_name: str = "tinyllama_1_1b",
) -> dict[str, Any]:
    """A RegMix / lit-gpt mixture config: ``train: {train_<d>: w}``, ``valid: {valid_<d>: w}``.

    Every domain of the mixture is listed (zeros included), as RegMix's own configs do;
    ``valid_domains`` (e.g. the target domains) share the validation weight equally.
    """
    mix = as_mixture(mixture)
    train = dict(zip([f"train_{d}" for d in mix], _exact(list(mix.values())), strict=True))
    out: dict[str, Any] = {"train": train}
    if valid_domains:
        out["valid"] = {f"valid_{d}": 1.0 / len(valid_domains) for d in valid_domains}
    out["model_name"] = model_name
    return out


def export_all(
    mixture: Mixture | Mapping[str, float],
    out_dir: str | Path,
    *,
    order: Sequence[str] | None = None,
    paths: Mapping[str, Sequence[str]] | None = None,
    prefixes: Mapping[str, str] | None = None,
    valid_domains: Sequence[str] = (),
    tokens_available: Mapping[str, int] | None = None,
    requested_tokens: int | None = None,
) -> dict[str, Path]:
    """Write the mixture in every format under ``out_dir``; returns format -> file path.

    ``order`` is the Hugging Face dataset order (default: sorted domains). The other options are
    passed to the format functions above.
    """
    mix = as_mixture(mixture)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(order) if order is not None else list(mix)
    hf = {
        "datasets": names,
        "probabilities": interleave_probabilities(mix, names),
        "stopping_strategy": "all_exhausted",
    }
    olmo = olmo_source_mixture(
        mix, paths=paths, tokens_available=tokens_available, requested_tokens=requested_tokens
    )
    texts = {
        "hf": json.dumps(hf, indent=2) + "\n",
        "olmo": yaml.safe_dump(olmo, sort_keys=False),
        "megatron": megatron_data_path(mix, prefixes=prefixes) + "\n",
        "regmix": yaml.safe_dump(regmix_config(mix, valid_domains=valid_domains), sort_keys=False),
    }
    return {key: atomic_write_text(out / FILE_NAMES[key], text) for key, text in texts.items()}


__all__ = [
    "FILE_NAMES",
    "export_all",
    "interleave_probabilities",
    "megatron_data_path",
    "olmo_source_mixture",
    "parse_megatron_data_path",
    "regmix_config",
]
