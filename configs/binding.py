"""An experiment folder is bound to the config whose results it holds.

``config.yaml`` in an experiment folder records the config of its results (``runs.parquet``,
``chosen.json``, ``report.md``, ...). A run with another config would rewrite some of those files
and leave the others, so the folder would show a mix of two experiments. ``bind_experiment_dir``
stops such a run before any work, naming the fields that differ, or with ``force`` moves the
earlier results to ``<experiment>/previous/<UTC time>/`` first.

Only fields that change results count. These are operational, and are ignored:

- ``name``: the experiment's label (default folder, deployment and artifact names), no number;
- ``runner``: where proxy tasks run (thread, Dask, Ray), how many at once, torch threads;
- ``target_run.deployment``: which served deployment receives the chosen mixture;
- ``corpus.cache_dir``, ``corpus.install``, ``corpus.min_domains``, ``corpus.workers``,
  ``corpus.shard_mb``: where corpus builds are cached, whether missing sources are downloaded, a
  stop threshold, and how the preparation is parallelized; none of them changes the corpus's
  tokens (``CorpusConfig.key`` leaves them out for the same reason).

Everything else counts, including every ``TrainConfig`` field such as ``device``: run ids hash
them, so a change trains other runs.

The run stores (``proxy_runs/``, ``target_runs/``) are never moved: a record is keyed by a run id
that hashes everything the run depends on, so reusing a finished run under another config is
correct.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from configs.experiment import ExperimentDir
from configs.schema import ExperimentConfig, parse_config
from mixtures.errors import ConfigError, MixoptError

#: Dotted config paths that never change results (see the module docstring); a field under one
#: of them is ignored as well.
OPERATIONAL_FIELDS = (
    "name",
    "runner",
    "target_run.deployment",
    "corpus.cache_dir",
    "corpus.install",
    "corpus.min_domains",
    "corpus.workers",
    "corpus.shard_mb",
    # proxies.config.OPERATIONAL: how a train config's runs execute, not what they compute
    "proxy.pack",
    "proxy.compile",
    "search.bo_proxy.pack",
    "search.bo_proxy.compile",
    "target_run.train.pack",
    "target_run.train.compile",
)
#: Differences named in the error before "and N more".
SHOWN_DIFFERENCES = 4
#: Characters of a value shown in the error.
SHOWN_VALUE_CHARS = 60


class _Absent:
    """A field one of the two configs does not have."""

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf of nested mappings; lists are leaves."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{path}.")
        else:
            yield path, value


def _operational(path: str) -> bool:
    return any(path == f or path.startswith(f"{f}.") for f in OPERATIONAL_FIELDS)


def result_differences(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """(path, old value, new value) of every field that changes results and differs between
    two dumped configs, in path order; a field missing on one side shows as ``<absent>``."""
    before, after = dict(flatten(old)), dict(flatten(new))
    return [
        (path, before.get(path, _ABSENT), after.get(path, _ABSENT))
        for path in sorted(before.keys() | after.keys())
        if not _operational(path) and before.get(path, _ABSENT) != after.get(path, _ABSENT)
    ]


def describe_differences(diffs: list[tuple[str, Any, Any]]) -> str:
    """``path: old -> new`` of the first few differences, then ``and N more``."""

    def show(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 3] + "..."

    shown = [f"{p}: {show(a)} -> {show(b)}" for p, a, b in diffs[:SHOWN_DIFFERENCES]]
    more = len(diffs) - SHOWN_DIFFERENCES
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def saved_config(path: Path) -> dict[str, Any]:
    """The config saved at ``path``, dumped as the current schema would (defaults added since it
    was written filled in); as read, when it no longer validates."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path} is not a readable config ({err}): pass --force to move the earlier results "
            "aside, or use another experiment folder"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping, got {type(data).__name__}")
    try:
        return parse_config(data, origin=str(path)).model_dump(mode="json")
    except MixoptError:
        return data


def archive_results(exp: ExperimentDir, *, now: float | None = None) -> Path | None:
    """Move the folder's result files (``ExperimentDir.result_files``) to
    ``previous/<UTC time>/``; returns that folder, or None when there was nothing to move.
    ``config.yaml`` moves last, so an interrupted move leaves the folder still bound."""
    files = exp.result_files()
    if not files:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    dest = exp.previous / stamp
    n = 1
    while dest.exists():
        n += 1
        dest = exp.previous / f"{stamp}-{n}"
    dest.mkdir(parents=True)
    for path in sorted(files, key=lambda p: p == exp.config):
        os.replace(path, dest / path.name)
    return dest


def bind_experiment_dir(
    exp: ExperimentDir,
    config: ExperimentConfig,
    *,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> Path | None:
    """Check that ``exp`` holds no results of a config that differs from ``config`` in a field
    that changes results; a ConfigError naming the fields otherwise. With ``force``, move those
    results to ``previous/<UTC time>/`` instead, tell ``say`` where, and return that folder.

    A folder without ``config.yaml`` (new, or holding only run stores) is free."""
    if not exp.config.is_file():
        return None
    diffs = result_differences(saved_config(exp.config), config.model_dump(mode="json"))
    if not diffs:
        return None
    if not force:
        raise ConfigError(
            f"experiment folder {exp} holds results of another config "
            f"({describe_differences(diffs)}): use another experiment folder "
            "(--experiment-dir), or pass --force to move the earlier results to "
            f"{exp.previous}/ and start afresh (finished proxy runs are kept and reused)"
        )
    dest = archive_results(exp)
    if dest is not None:
        say(f"earlier results of another config in {exp} moved to {dest}")
    return dest
