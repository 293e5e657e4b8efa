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

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


@dataclass(frozen=True)
class _Csv:
    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (line number, cells)


@dataclass
class _Problems:
    """Raises on the first problem, or (drop mode) remembers the first reason per row id."""

    drop: bool
    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, src: _Csv, line: int, column: str, reason: str, message: str, rid: str) -> None:
        if not self.drop:
            raise DataError(f"{src.path}: row {line}, column {column!r}: {message}")
        self.reasons.setdefault(rid, reason)


@dataclass(frozen=True)
class _Parsed:
    """Valid rows of one file: run key -> (line, values in column order)."""

    rows: dict[str, tuple[int, np.ndarray]]
    bad: dict[str, str]  # run key -> reason, for rows dropped in drop mode


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
    _check_tolerance(tolerance)
    mix, res = _read_csv(mixtures_csv), _read_csv(results_csv)
    _require(mix, ["index"])
    _require(res, ["index"])
    weight_cols = [c for c in mix.header if c.startswith(REGMIX_WEIGHT_PREFIX)]
    if not weight_cols:
        raise DataError(f"{mix.path}: no {REGMIX_WEIGHT_PREFIX}<domain> columns in {mix.header}")
    _no_unknown(mix, allowed={"index", *weight_cols}, expected=f"{REGMIX_WEIGHT_PREFIX}<domain>")
    metric_cols = [c for c in res.header if c != "index"]
    _no_unknown(
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
    _check_tolerance(tolerance)
    rat, met = _read_csv(ratios_csv), _read_csv(metrics_csv)
    _require(rat, ["run"])
    _require(met, ["run"])
    weight_cols = [c for c in rat.header if c not in OLMIX_META_COLUMNS]
    if not weight_cols:
        raise DataError(f"{rat.path}: no domain columns besides {list(OLMIX_META_COLUMNS)}")
    candidates = [c for c in met.header if c not in OLMIX_META_COLUMNS]
    metric_cols, skipped = _split_numeric(met, candidates)
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
    _check_tolerance(tolerance)
    if (weights is None) == (weights_prefix is None):
        raise ConfigError("give exactly one of weights (column names) or weights_prefix")
    src = _read_csv(csv_path)
    if weights_prefix is not None:
        weight_cols = [c for c in src.header if c.startswith(weights_prefix) and c != id_column]
        if not weight_cols:
            raise DataError(f"{src.path}: no column starts with {weights_prefix!r}: {src.header}")
        domains = [c.removeprefix(weights_prefix) for c in weight_cols]
    else:
        weight_cols = list(weights or [])
        domains = weight_cols
    extra = [c for c in (id_column, cost) if c is not None]
    _require(src, [*weight_cols, *fidelity, *extra, *(metrics or [])])
    used = {*weight_cols, *fidelity, *extra}
    if metrics is None:
        metric_cols, skipped = _split_numeric(src, [c for c in src.header if c not in used])
    else:
        metric_cols, skipped = list(metrics), []
    overlap = sorted(set(metric_cols) & used)
    if overlap:
        raise ConfigError(f"column(s) {overlap} cannot be both metrics and weights/fidelity/cost")
    problems = _Problems(drop_invalid)
    value_cols = [*weight_cols, *metric_cols, *fidelity, *([cost] if cost else [])]
    parsed = _parse_file(
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
    return ImportReport(table, len(src.rows), _count(problems.reasons), tuple(skipped))


# ---------------------------------------------------------------------------- reading
def _read_csv(path: str | Path) -> _Csv:
    """Header and non-blank rows with their line numbers; DataError if unreadable or empty."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"CSV file {p} does not exist")
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            records = [(reader.line_num, tuple(r)) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"CSV file {p} cannot be read: {exc}") from exc
    records = [(n, r) for n, r in records if any(c.strip() for c in r)]  # blank lines carry nothing
    if not records:
        raise DataError(f"CSV file {p} is empty, expected a header line")
    header = tuple(c.strip() for c in records[0][1])
    dups = sorted({c for c in header if header.count(c) > 1})
    if dups:
        raise DataError(f"{p}: header line repeats column(s) {dups}")
    return _Csv(p, header, tuple(records[1:]))


def _require(src: _Csv, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in src.header]
    if missing:
        raise DataError(f"{src.path}: missing column(s) {missing}; the header has {src.header}")


def _no_unknown(src: _Csv, *, allowed: set[str], expected: str) -> None:
    unknown = [c for c in src.header if c not in allowed]
    if unknown:
        raise DataError(f"{src.path}: unknown column(s) {unknown}; expected columns {expected}")


def _split_numeric(src: _Csv, columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(columns with at least one number, columns without any) of ``columns``."""
    numeric, text = [], []
    for col in columns:
        j = src.header.index(col)
        has_number = any(j < len(cells) and _is_number(cells[j]) for _, cells in src.rows)
        (numeric if has_number else text).append(col)
    return numeric, text


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- parsing rows
def _parse_file(
    src: _Csv,
    *,
    key: str | None,
    prefix: str | None,
    value_cols: Sequence[str],
    n_weights: int,
    tolerance: float,
    problems: _Problems,
) -> _Parsed:
    """Check every row; the first ``n_weights`` value columns are mixture weights."""
    idx = [src.header.index(c) for c in value_cols]
    key_idx = None if key is None else src.header.index(key)
    rows: dict[str, tuple[int, np.ndarray]] = {}
    first_line: dict[str, int] = {}
    bad_before = set(problems.reasons)
    for line, cells in src.rows:
        rid = _row_id(src, line, cells, key, key_idx, prefix, problems)
        if rid is None:
            continue
        if rid in first_line:
            shown = rid if key_idx is None else cells[key_idx].strip()
            msg = f"duplicate id {shown!r} (first on row {first_line[rid]})"
            problems.add(src, line, key or "", "duplicate_id", msg, rid)
            _count_duplicate(problems, rid, line)
            rows.pop(rid, None)
            continue
        first_line[rid] = line
        values = _row_values(src, line, cells, value_cols, idx, problems, rid)
        if values is None or not _check_weights(
            src, line, values, value_cols[:n_weights], tolerance, problems, rid
        ):
            continue
        if n_weights:
            values[:n_weights] /= values[:n_weights].sum()
        rows[rid] = (line, values)
    bad = {r: why for r, why in problems.reasons.items() if r not in bad_before}
    rows = {r: v for r, v in rows.items() if r not in bad}
    return _Parsed(rows, bad)


def _row_id(
    src: _Csv,
    line: int,
    cells: tuple[str, ...],
    key: str | None,
    key_idx: int | None,
    prefix: str | None,
    problems: _Problems,
) -> str | None:
    value = "" if key_idx is None or key_idx >= len(cells) else cells[key_idx].strip()
    if key_idx is None:
        rid = f"{prefix}:{line}"
    elif value:
        rid = value if prefix is None else f"{prefix}:{value}"
    else:
        rid = f"{src.path}#{line}"  # no id: this row cannot match a row of another file
    if len(cells) != len(src.header):
        # the id, when readable, keys the problem so the partner row is not counted again
        msg = f"{len(cells)} cells, expected {len(src.header)} as in the header"
        problems.add(src, line, "*", "wrong_cell_count", msg, rid)
        return None
    if key_idx is not None and not value:
        problems.add(src, line, key or "", "empty_id", "empty id", rid)
        return None
    return rid


def _count_duplicate(problems: _Problems, rid: str, line: int) -> None:
    """In drop mode every row of a repeated id is dropped, so count each extra row too."""
    problems.reasons[f"{rid}#dup{line}"] = "duplicate_id"


def _row_values(
    src: _Csv,
    line: int,
    cells: tuple[str, ...],
    cols: Sequence[str],
    idx: Sequence[int],
    problems: _Problems,
    rid: str,
) -> np.ndarray | None:
    out = np.empty(len(cols))
    for k, (col, j) in enumerate(zip(cols, idx, strict=True)):
        cell = cells[j].strip()
        if not cell:
            problems.add(src, line, col, "empty_cell", "empty cell, expected a number", rid)
            return None
        try:
            out[k] = float(cell)
        except ValueError:
            problems.add(src, line, col, "not_a_number", f"{cell!r} is not a number", rid)
            return None
        if not math.isfinite(out[k]):
            problems.add(src, line, col, "non_finite", f"{cell!r}, expected a finite number", rid)
            return None
    return out


def _check_weights(
    src: _Csv,
    line: int,
    values: np.ndarray,
    cols: Sequence[str],
    tolerance: float,
    problems: _Problems,
    rid: str,
) -> bool:
    if not cols:
        return True
    w = values[: len(cols)]
    neg = np.flatnonzero(w < 0)
    if neg.size:
        col = cols[neg[0]]
        problems.add(src, line, col, "negative_weight", f"weight {w[neg[0]]} < 0", rid)
        return False
    total = math.fsum(w)
    if abs(total - 1.0) > tolerance:
        span = f"{cols[0]}..{cols[-1]}" if len(cols) > 1 else cols[0]
        problems.add(
            src,
            line,
            span,
            "bad_sum",
            f"weights sum to {total:.6g}, expected 1 within {tolerance}",
            rid,
        )
        return False
    return True


# ---------------------------------------------------------------------------- joining, building
def _import_pair(
    wsrc: _Csv,
    msrc: _Csv,
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
    problems = _Problems(drop_invalid)
    w = _parse_file(
        wsrc,
        key=key,
        prefix=prefix,
        value_cols=weight_cols,
        n_weights=len(weight_cols),
        tolerance=tolerance,
        problems=problems,
    )
    m = _parse_file(
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
    return ImportReport(table, len(wsrc.rows), _count(problems.reasons))


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


def _count(reasons: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for why in reasons.values():
        out[why] = out.get(why, 0) + 1
    return dict(sorted(out.items()))


def _model_size(stem: str) -> float | None:
    m = _SIZE_SUFFIX.search(stem)
    return None if m is None else float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def _check_tolerance(tolerance: float) -> None:
    if not (math.isfinite(tolerance) and 0 <= tolerance < 1):
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance}")
