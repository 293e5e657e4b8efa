"""Import existing runs (RegMix, Olmix, any wide CSV) into a ``RunTable``.

Every problem is reported as a DataError naming the file, the row (1-based line of the file, the
header is line 1) and the column. With ``drop_invalid=True`` bad ROWS are dropped and counted by
reason in ``ImportReport.dropped``; missing or unknown COLUMNS are always an error.

Row reasons: ``wrong_cell_count``, ``empty_id``, ``duplicate_id`` (every row of a repeated id),
``empty_cell``, ``not_a_number``, ``non_finite``, ``negative_weight``, ``bad_sum``, and for the
two-file formats ``no_results`` (a mixture row without a result row) and ``no_mixture`` (a result
row without a mixture row). A run is counted once, under its first problem. ``rows_read`` counts
the data rows of the weights file, so ``len(table) == rows_read - (sum(dropped) - no_mixture)``.

Weights within ``tolerance`` of summing to 1 are divided by their sum, so stored mixtures lie on the
simplex exactly (imported files round weights, e.g. RegMix to 3 decimals).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixtures.csv_rows import (
    CsvFile,
    Problems,
    check_tolerance,
    count_reasons,
    no_unknown,
    parse_file,
    read_csv,
    require,
    split_numeric,
)
from mixtures.errors import ConfigError, DataError
from mixtures.runtable import RunTable

#: Column-name prefix of RegMix mixture weights (``train_the_pile_arxiv`` -> domain ``arxiv``).
REGMIX_WEIGHT_PREFIX = "train_the_pile_"
#: RegMix result columns all start with this; the full column name is kept as the metric name.
REGMIX_METRIC_PREFIX = "metric/"
#: Olmix files carry pandas' unnamed row index, the W&B run id, the run name and its index
#: besides the domain (ratios) or metric (metrics) columns.
OLMIX_META_COLUMNS = ("", "Unnamed: 0", "run", "name", "index")
#: A model size at the end of a RegMix file name (``..._1m``, ``..._60m``, ``..._1B``).
_SIZE_SUFFIX = re.compile(r"_(\d+(?:\.\d+)?)([kKmMbB])$")
_SIZE_UNITS = {"k": 1e3, "m": 1e6, "b": 1e9}


@dataclass(frozen=True)
class ImportReport:
    """Result of an import: the table, how many weight rows were read, what was dropped and why."""

    table: RunTable
    rows_read: int
    dropped: dict[str, int]
    #: Columns that held no number at all (text such as run names) and were not imported.
    skipped_columns: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- public API
def import_regmix(
    mixtures_csv: str | Path,
    results_csv: str | Path,
    *,
    drop_invalid: bool = False,
    tolerance: float = 0.005,
) -> ImportReport:
    """Import RegMix's released runs: a mixture CSV and a results CSV joined on ``index``.

    Mixture columns: ``index`` and ``train_the_pile_<domain>`` (domain ``<domain>``). Result
    columns: ``index`` and ``metric/...`` (names kept as they are). Run ids are
    ``<mixtures file stem>:<index>``. A model size at the end of the results file name
    (``_1m``, ``_60m``, ``_1B``) is recorded as fidelity ``model_params``.
    """
    mix, res = _read_pair(mixtures_csv, results_csv, key="index", tolerance=tolerance)
    weight_cols = [c for c in mix.header if c.startswith(REGMIX_WEIGHT_PREFIX)]
    if not weight_cols:
        raise DataError(f"{mix.path}: no {REGMIX_WEIGHT_PREFIX}<domain> columns in {mix.header}")
    no_unknown(mix, allowed={"index", *weight_cols}, expected=f"{REGMIX_WEIGHT_PREFIX}<domain>")
    metric_cols = [c for c in res.header if c != "index"]
    no_unknown(
        res,
        allowed={"index", *(c for c in metric_cols if c.startswith(REGMIX_METRIC_PREFIX))},
        expected=f"{REGMIX_METRIC_PREFIX}<name>",
    )
    if not metric_cols:
        raise DataError(f"{res.path}: no metric columns besides 'index'")
    fidelity = {}
    size = _model_size(res.path.stem)
    if size is not None:
        fidelity["model_params"] = size
    domains = [c.removeprefix(REGMIX_WEIGHT_PREFIX) for c in weight_cols]
    return _import_pair(
        mix,
        res,
        key="index",
        weight_cols=weight_cols,
        domains=domains,
        metric_cols=metric_cols,
        prefix=mix.path.stem,
        constant_fidelity=fidelity,
        drop_invalid=drop_invalid,
        tolerance=tolerance,
    )


def import_olmix(
    ratios_csv: str | Path,
    metrics_csv: str | Path,
    *,
    drop_invalid: bool = False,
    tolerance: float = 0.005,
) -> ImportReport:
    """Import Olmix swarm results: ``*_ratios.csv`` and ``*_metrics.csv`` joined on ``run``.

    Both files carry the meta columns ``OLMIX_META_COLUMNS`` (pandas' unnamed index, ``run``,
    ``name``, ``index``), which are not imported. Every other ratios column is a domain (names
    kept, e.g. ``dclm:health``); every other metrics column holding numbers is a metric (columns
    without any number are skipped and listed in the report). Run ids are
    ``<ratios file stem without _ratios>:<run>``.
    """
    rat, met = _read_pair(ratios_csv, metrics_csv, key="run", tolerance=tolerance)
    weight_cols = [c for c in rat.header if c not in OLMIX_META_COLUMNS]
    if not weight_cols:
        raise DataError(f"{rat.path}: no domain columns besides {list(OLMIX_META_COLUMNS)}")
    candidates = [c for c in met.header if c not in OLMIX_META_COLUMNS]
    metric_cols, skipped = split_numeric(met, candidates)
    if not metric_cols:
        raise DataError(f"{met.path}: no numeric metric columns besides the meta columns")
    report = _import_pair(
        rat,
        met,
        key="run",
        weight_cols=weight_cols,
        domains=weight_cols,
        metric_cols=metric_cols,
        prefix=rat.path.stem.removesuffix("_ratios"),
        constant_fidelity={},
        drop_invalid=drop_invalid,
        tolerance=tolerance,
    )
    return ImportReport(report.table, report.rows_read, report.dropped, tuple(skipped))


def import_wide(
    csv_path: str | Path,
    *,
    weights: Sequence[str] | None = None,
    weights_prefix: str | None = None,
    metrics: Sequence[str] | None = None,
    fidelity: Sequence[str] = (),
    cost: str | None = None,
    id_column: str | None = None,
    drop_invalid: bool = False,
    tolerance: float = 0.005,
) -> ImportReport:
    """Import one wide CSV: a row per run, weight, metric, fidelity and cost columns.

    Weight columns are given by name (``weights``) or by ``weights_prefix`` (stripped to get the
    domain); exactly one of the two. Metric columns are ``metrics`` or, by default, every other
    column holding numbers except the id, fidelity and cost columns (columns without any number
    are skipped and listed in the report). Run ids are the ``id_column`` values, or
    ``<file stem>:<row>`` without one.
    """
    check_tolerance(tolerance)
    if (weights is None) == (weights_prefix is None):
        raise ConfigError("give exactly one of weights (column names) or weights_prefix")
    src = read_csv(csv_path)
    if weights_prefix is not None:
        weight_cols = [c for c in src.header if c.startswith(weights_prefix) and c != id_column]
        if not weight_cols:
            raise DataError(f"{src.path}: no column starts with {weights_prefix!r}: {src.header}")
        domains = [c.removeprefix(weights_prefix) for c in weight_cols]
    else:
        weight_cols = list(weights or [])
        domains = weight_cols
    extra = [c for c in (id_column, cost) if c is not None]
    require(src, [*weight_cols, *fidelity, *extra, *(metrics or [])])
    used = {*weight_cols, *fidelity, *extra}
    if metrics is None:
        metric_cols, skipped = split_numeric(src, [c for c in src.header if c not in used])
    else:
        metric_cols, skipped = list(metrics), []
    overlap = sorted(set(metric_cols) & used)
    if overlap:
        raise ConfigError(f"column(s) {overlap} cannot be both metrics and weights/fidelity/cost")
    problems = Problems(drop_invalid)
    value_cols = [*weight_cols, *metric_cols, *fidelity, *([cost] if cost else [])]
    parsed = parse_file(
        src,
        key=id_column,
        prefix=None if id_column else src.path.stem,
        value_cols=value_cols,
        n_weights=len(weight_cols),
        tolerance=tolerance,
        problems=problems,
    )
    table = _build_table(
        parsed.rows,
        domains=domains,
        metric_cols=metric_cols,
        fidelity_cols=list(fidelity),
        has_cost=cost is not None,
        constant_fidelity={},
    )
    return ImportReport(table, len(src.rows), count_reasons(problems.reasons), tuple(skipped))


# ---------------------------------------------------------------------------- joining, building
def _read_pair(
    weights_csv: str | Path, metrics_csv: str | Path, *, key: str, tolerance: float
) -> tuple[CsvFile, CsvFile]:
    """The two files of a two-file format, each with the ``key`` column they are joined on."""
    check_tolerance(tolerance)
    wsrc, msrc = read_csv(weights_csv), read_csv(metrics_csv)
    require(wsrc, [key])
    require(msrc, [key])
    return wsrc, msrc


def _import_pair(
    wsrc: CsvFile,
    msrc: CsvFile,
    *,
    key: str,
    weight_cols: Sequence[str],
    domains: Sequence[str],
    metric_cols: Sequence[str],
    prefix: str,
    constant_fidelity: dict[str, float],
    drop_invalid: bool,
    tolerance: float,
) -> ImportReport:
    """Parse a weights file and a metrics file and inner-join them on ``key``."""
    problems = Problems(drop_invalid)
    w = parse_file(
        wsrc,
        key=key,
        prefix=prefix,
        value_cols=weight_cols,
        n_weights=len(weight_cols),
        tolerance=tolerance,
        problems=problems,
    )
    m = parse_file(
        msrc,
        key=key,
        prefix=prefix,
        value_cols=metric_cols,
        n_weights=0,
        tolerance=tolerance,
        problems=problems,
    )
    seen_w, seen_m = set(w.rows) | set(w.bad), set(m.rows) | set(m.bad)
    for rid, (line, _) in w.rows.items():
        if rid not in seen_m:
            msg = f"{key} {rid.removeprefix(prefix + ':')!r} has no row in {msrc.path.name}"
            problems.add(wsrc, line, key, "no_results", msg, rid)
    for rid, (line, _) in m.rows.items():
        if rid not in seen_w:
            msg = f"{key} {rid.removeprefix(prefix + ':')!r} has no row in {wsrc.path.name}"
            problems.add(msrc, line, key, "no_mixture", msg, rid)
    rows = {
        rid: (line, np.concatenate([wv, m.rows[rid][1]]))
        for rid, (line, wv) in w.rows.items()
        if rid in m.rows and rid not in problems.reasons
    }
    table = _build_table(
        rows,
        domains=domains,
        metric_cols=metric_cols,
        fidelity_cols=[],
        has_cost=False,
        constant_fidelity=constant_fidelity,
    )
    return ImportReport(table, len(wsrc.rows), count_reasons(problems.reasons))


def _build_table(
    rows: dict[str, tuple[int, np.ndarray]],
    *,
    domains: Sequence[str],
    metric_cols: Sequence[str],
    fidelity_cols: Sequence[str],
    has_cost: bool,
    constant_fidelity: dict[str, float],
) -> RunTable:
    if not rows:
        raise DataError("no valid runs to import (every row was dropped or the files are empty)")
    ids = list(rows)
    values = np.stack([rows[r][1] for r in ids])  # (n, weights + metrics + fidelity + cost)
    d, k, f = len(domains), len(metric_cols), len(fidelity_cols)
    fid = {name: values[:, d + k + i] for i, name in enumerate(fidelity_cols)}
    fid.update({name: np.full(len(ids), v) for name, v in constant_fidelity.items()})
    return RunTable.from_arrays(
        ids,
        list(domains),
        values[:, :d],
        {name: values[:, d + i] for i, name in enumerate(metric_cols)},
        fidelity=fid,
        cost=values[:, d + k + f] if has_cost else None,
    )


def _model_size(stem: str) -> float | None:
    m = _SIZE_SUFFIX.search(stem)
    return None if m is None else float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
