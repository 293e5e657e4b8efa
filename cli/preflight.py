"""Checks of a command's inputs that need no corpus and no server: run before any server starts
or any work begins, so that a typo costs a second, not a corpus build or a cross-validation.

Each check returns the problems it finds (a line each, naming the field, file or value); a
command collects them and raises one ConfigError listing all of them (:func:`raise_problems`).
What only the built corpus tells (token counts behind the repetition bound, a domain of the
default source that could not be extracted, a file's content) is checked by the flow itself.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from configs.schema import CorpusConfig, ExperimentConfig
from mixtures.errors import ConfigError, DataError
from mixtures.mixture import SUM_TOLERANCE

#: A target-run label: the mixture's name in the comparison table and in task names.
LABEL = re.compile(r"[A-Za-z0-9_.-]+")


def raise_problems(problems: Iterable[str]) -> None:
    """One ConfigError listing every problem (each on its own line when several); nothing when
    there are none."""
    found = list(dict.fromkeys(problems))
    if len(found) == 1:
        raise ConfigError(found[0])
    if found:
        raise ConfigError(f"{len(found)} problems:\n" + "\n".join(f"  - {p}" for p in found))


def check_experiment(config: ExperimentConfig) -> list[str]:
    """The config's domains, weight bounds and corpus paths, before any work."""
    problems = check_domains(config)
    problems += check_corpus_paths(config.corpus)
    return problems


def source_domains(corpus: CorpusConfig) -> list[str]:
    """Every domain the corpus source offers: the configured folders or token files, or the
    registry of the default and smoke sources."""
    from proxies.sources import DEFAULT_DOMAINS, SMOKE_DOMAINS

    return {
        "default": list(DEFAULT_DOMAINS),
        "smoke": list(SMOKE_DOMAINS),
        "folders": list(corpus.folders),
        "tokens": list(corpus.token_domains),
    }[corpus.source]


def training_domains(config: ExperimentConfig) -> tuple[list[str], list[str]]:
    """(training domains, held-out target domains) the config asks for; ConfigError when the
    domains are inconsistent (:func:`check_domains` lists every such problem)."""
    raise_problems(_selection_problems(config))
    selected = _selected(config.corpus)
    targets = config.target.target_domains(selected)
    held_out = targets if config.target.holdout else []
    return [d for d in selected if d not in held_out], held_out


def check_domains(config: ExperimentConfig) -> list[str]:
    """Domain names the config uses (``corpus.domains``, the target, the weight bounds) against
    the source's, at least two training domains, and bounds some mixture satisfies."""
    problems = _selection_problems(config)
    if problems:
        return problems
    train, held_out = training_domains(config)
    sweep = config.sweep
    for field, given in (
        ("sweep.min_weight", sweep.min_weight),
        ("sweep.max_weight", sweep.max_weight),
    ):
        for name in given:
            if name in held_out:
                problems.append(
                    f"{field} names {name!r}, a held-out target domain (target.holdout: true), "
                    "which is never trained on"
                )
            elif name not in train:
                problems.append(f"{field} names unknown domain {name!r}; training domains: {train}")
    if problems:
        return problems
    from mixtures.constraints import Bounds

    try:
        Bounds.build(train, min_weight=sweep.min_weight, max_weight=sweep.max_weight)
    except ConfigError as err:
        problems.append(f"sweep.min_weight / sweep.max_weight: {err}")
    return problems


def _selected(corpus: CorpusConfig) -> list[str]:
    return list(
        dict.fromkeys(corpus.domains if corpus.domains is not None else source_domains(corpus))
    )


def _selection_problems(config: ExperimentConfig) -> list[str]:
    corpus, target = config.corpus, config.target
    known = source_domains(corpus)
    where = {"folders": "corpus.folders", "tokens": "corpus.token_domains"}.get(
        corpus.source, f"the {corpus.source} source"
    )
    problems = []
    if corpus.domains is not None:
        unknown = [d for d in corpus.domains if d not in known]
        if unknown:
            problems.append(f"corpus.domains names {unknown}, not in {where} ({known})")
        twice = sorted({d for d in corpus.domains if corpus.domains.count(d) > 1})
        if twice:
            problems.append(f"corpus.domains names {twice} more than once")
    selected = [d for d in _selected(corpus) if d in known]
    if target.kind in ("domain", "custom") and target.domain and target.domain not in selected:
        problems.append(
            f"target.domain {target.domain!r} is not a domain of the corpus; domains: {selected}"
        )
    unknown_weights = sorted(set(target.weights) - set(selected))
    if target.kind == "weighted" and unknown_weights:
        problems.append(
            f"target.weights names {unknown_weights}, not domains of the corpus; domains: "
            f"{selected}"
        )
    if problems:
        return problems
    targets = target.target_domains(selected)
    train = [d for d in selected if not (target.holdout and d in targets)]
    if len(train) < 2:
        held = f" (held out: {targets})" if target.holdout else ""
        problems.append(f"need at least 2 training domains, got {train}{held}")
    return problems


def check_corpus_paths(corpus: CorpusConfig) -> list[str]:
    """The domain folders, token files and tokenizer the corpus reads, and its cache folder."""
    from proxies.documents.reading import supported_files

    problems = []
    selected = [d for d in _selected(corpus) if d in source_domains(corpus)]
    if corpus.source == "folders":
        for name in selected:
            folder = Path(corpus.folders[name])
            try:
                supported_files(folder)
            except DataError as err:
                problems.append(f"corpus.folders.{name}: {err}")
                continue
            if not os.access(folder, os.R_OK | os.X_OK):
                problems.append(f"corpus.folders.{name}: folder {folder} cannot be read")
    if corpus.source == "tokens":
        from proxies.shard_files import find_token_files

        for name in selected:
            files = corpus.token_domains[name]
            for split, entries in (("train", files.train), ("val", files.val)):
                try:
                    find_token_files(entries, where=f"corpus.token_domains.{name}.{split}")
                except DataError as err:
                    problems.append(str(err))
    if corpus.tokenizer is not None:
        problems += _tokenizer_problems(corpus)
    problems += _folder_problems(corpus.cache_dir, "corpus.cache_dir")
    return problems


def _tokenizer_problems(corpus: CorpusConfig) -> list[str]:
    from proxies.tokenizer import load_tokenizer

    assert corpus.tokenizer is not None  # checked by the caller
    try:
        given = load_tokenizer(corpus.tokenizer)
        if corpus.source != "tokens":
            given.check_vocab(corpus.vocab_size)
        if corpus.source != "tokens" or corpus.eos_id is None:
            given.eos_id(corpus.eos_token)
    except DataError as err:
        return [str(err)]
    return []


def check_writable_folder(path: str | Path, what: str) -> list[str]:
    """A folder the command will create or write into: a problem when it is a file, or cannot
    be created there (a file on its path, a folder that cannot be written)."""
    return _folder_problems(Path(path), what)


def _folder_problems(path: Path, what: str) -> list[str]:
    if path.exists():
        if not path.is_dir():
            return [f"{what} {path} is a file, not a folder"]
        if not os.access(path, os.W_OK | os.X_OK):
            return [f"{what} {path} is not writable"]
        return []
    return _creatable(path, what)


def check_output_file(path: str | Path, option: str) -> list[str]:
    """A file the command will write at the end: a problem found now, not after the work,
    when it is a folder or its folder cannot be created or written."""
    path = Path(path)
    if path.is_dir():
        return [f"{option} {path} is a folder; name a file"]
    if not path.exists():
        return _creatable(path, option)
    # written as a temporary file beside it, then renamed over it
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return [f"{option} {path} cannot be written: {path.parent} is not writable"]
    return []


def _creatable(path: Path, what: str) -> list[str]:
    """``path`` does not exist: its nearest existing ancestor must be a writable folder."""
    ancestor = next(p for p in path.absolute().parents if p.exists())
    if not ancestor.is_dir():
        return [f"{what} {path} cannot be created: {ancestor} is a file, not a folder"]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [f"{what} {path} cannot be created: {ancestor} is not writable"]
    return []


def check_weights(weights: Mapping[str, float], origin: str) -> list[str]:
    """Each weight finite and >= 0, and their sum 1 (within ``SUM_TOLERANCE``). A sum off 1 is
    an error, not normalized: it is most often a typo."""
    bad = {k: v for k, v in weights.items() if not (math.isfinite(v) and v >= 0)}
    if bad:
        return [f"{origin}: weights must be finite numbers >= 0, got {bad}"]
    total = math.fsum(weights.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        return [
            f"{origin}: weights sum to {total:.6g}, expected 1 (within {SUM_TOLERANCE:g}); "
            "pass weights that sum to 1"
        ]
    return []


def check_mixture_domains(
    weights: Mapping[str, float], config: ExperimentConfig, origin: str
) -> list[str]:
    """A target-run mixture's domains: training domains of the config, none held out."""
    train, held_out = training_domains(config)
    problems = []
    held = [d for d in weights if d in held_out]
    if held:
        problems.append(
            f"{origin} gives weight to {held}, held out as the target (target.holdout: true) "
            f"and never trained on; training domains: {train}"
        )
    unknown = [d for d in weights if d not in train and d not in held_out]
    if unknown:
        problems.append(f"{origin} names unknown domain(s) {unknown}; training domains: {train}")
    return problems


def check_label(label: str, config: ExperimentConfig) -> list[str]:
    """A target-run label: a plain name that is not one of the baselines run beside it."""
    if not LABEL.fullmatch(label):
        return [f"--label {label!r} must be a name of letters, digits, '_', '.' or '-'"]
    if label in config.target_run.baselines:
        return [
            f"--label {label!r} is a baseline of target_run.baselines "
            f"{list(config.target_run.baselines)}, which runs beside it; choose another label"
        ]
    return []
