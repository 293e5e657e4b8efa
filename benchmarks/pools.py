"""The public pools of finished runs that the surrogate and replay benchmarks measure on.

All ship in ``data/``: RegMix's released runs (``data/regmix``, MIT) and three swarms of 258
demo-corpus proxies made by ``mixopt sweep`` (each folder's SOURCE.md says how).

- ``regmix768``: RegMix's 512 train + 256 test 1M-parameter runs, 17 domains, 13 losses;
- ``regmix60m`` / ``regmix1b``: the 256 test mixtures at 60M and 64 other mixtures at 1B;
- ``demo_swarm``: the demo's sweep config (tech_docs held out), seed 0;
- ``heldout_code_python_swarm``: the same corpus with code_python held out, seed 1;
- ``heldout_dialogue_swarm``: dialogue held out, seed 2.

Each pool's targets are its validation losses, by short name (``pile_cc``, ``tech_docs``).
"""

from __future__ import annotations

from typing import Literal

from benchmarks.suite import ROOT
from mixtures.errors import ConfigError
from mixtures.runtable import RunTable

REGMIX = ROOT / "data" / "regmix"
PoolName = Literal[
    "regmix768",
    "regmix60m",
    "regmix1b",
    "demo_swarm",
    "heldout_code_python_swarm",
    "heldout_dialogue_swarm",
]
#: RegMix pools: (mixture CSV, loss CSV) pairs in data/regmix, concatenated
REGMIX_FILES = {
    "regmix768": (
        ("train_mixture_1m.csv", "train_pile_loss_1m.csv"),
        ("test_mixture_1m.csv", "test_pile_loss_1m.csv"),
    ),
    "regmix60m": (("test_mixture_60m.csv", "test_pile_loss_60m.csv"),),
    "regmix1b": (("test_mixture_1B.csv", "test_pile_loss_1B.csv"),),
}
SWARMS = {
    "demo_swarm": ROOT / "data" / "mixopt_demo_swarm" / "runs.parquet",
    "heldout_code_python_swarm": ROOT / "data" / "mixopt_heldout_swarm" / "runs.parquet",
    "heldout_dialogue_swarm": ROOT / "data" / "mixopt_heldout_dialogue_swarm" / "runs.parquet",
}


def regmix_table(mixtures_csv: str, results_csv: str) -> RunTable:
    """One pair of RegMix's released CSVs as a run table."""
    from mixtures.importers import import_regmix

    return import_regmix(REGMIX / mixtures_csv, REGMIX / results_csv).table


def load_pool(name: str) -> RunTable:
    if name in SWARMS:
        return RunTable.read(SWARMS[name])
    if name not in REGMIX_FILES:
        raise ConfigError(f"unknown pool {name!r}; pools: {[*REGMIX_FILES, *SWARMS]}")
    first, *rest = (regmix_table(*files) for files in REGMIX_FILES[name])
    for other in rest:
        first = first.concat(other)
    return first


def short_name(metric: str) -> str | None:
    """``metric/the_pile_pile_cc_val_loss`` -> ``pile_cc``, ``val_loss/legal`` -> ``legal``;
    None for a metric that is not a validation loss."""
    if metric.startswith("val_loss/"):
        return metric.removeprefix("val_loss/")
    if metric.startswith("metric/the_pile_") and metric.endswith("_val_loss"):
        return metric.removeprefix("metric/the_pile_").removesuffix("_val_loss")
    return None


def pool_targets(table: RunTable, wanted: list[str] | None = None) -> dict[str, str]:
    """Short name -> metric of the pool's validation losses: ``wanted`` ones (all for None)."""
    losses = {s: m for m in table.metrics if (s := short_name(m)) is not None}
    if wanted is None:
        return dict(sorted(losses.items()))
    unknown = sorted(set(wanted) - set(losses))
    if unknown:
        raise ConfigError(f"unknown target(s) {unknown}; the pool has {sorted(losses)}")
    return {w: losses[w] for w in wanted}
