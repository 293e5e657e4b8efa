"""Reading the CSV files of imported runs and checking their rows.

Every problem names the file, the row (1-based line of the file, the header is line 1) and the
column. ``Problems`` raises on the first one, or in drop mode remembers a reason per run id, so
that bad rows are dropped and counted (see ``mixtures.importers`` for the reasons).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixtures.errors import ConfigError, DataError


@dataclass(frozen=True)
class CsvFile:
    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (line number, cells)


@dataclass
class Problems:
    """Raises on the first problem, or (drop mode) remembers the first reason per row id."""

    drop: bool
    reasons: dict[str, str] = field(default_factory=dict)

    def add(
        self, src: CsvFile, line: int, column: str, reason: str, message: str, rid: str
    ) -> None:
        if not self.drop:
            raise DataError(f"{src.path}: row {line}, column {column!r}: {message}")
        self.reasons.setdefault(rid, reason)


@dataclass(frozen=True)
class Parsed:
    """Valid rows of one file: run key -> (line, values in column order)."""

    rows: dict[str, tuple[int, np.ndarray]]
    bad: dict[str, str]  # run key -> reason, for rows dropped in drop mode


def read_csv(path: str | Path) -> CsvFile:
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
    return CsvFile(p, header, tuple(records[1:]))


def require(src: CsvFile, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in src.header]
    if missing:
        raise DataError(f"{src.path}: missing column(s) {missing}; the header has {src.header}")


def no_unknown(src: CsvFile, *, allowed: set[str], expected: str) -> None:
    unknown = [c for c in src.header if c not in allowed]
    if unknown:
        raise DataError(f"{src.path}: unknown column(s) {unknown}; expected columns {expected}")


def split_numeric(src: CsvFile, columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(columns with at least one number, columns without any) of ``columns``."""
    numeric: list[str] = []
    text: list[str] = []
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
def parse_file(
    src: CsvFile,
    *,
    key: str | None,
    prefix: str | None,
    value_cols: Sequence[str],
    n_weights: int,
    tolerance: float,
    problems: Problems,
) -> Parsed:
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
    return Parsed(rows, bad)


def _row_id(
    src: CsvFile,
    line: int,
    cells: tuple[str, ...],
    key: str | None,
    key_idx: int | None,
    prefix: str | None,
    problems: Problems,
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


def _count_duplicate(problems: Problems, rid: str, line: int) -> None:
    """In drop mode every row of a repeated id is dropped, so count each extra row too."""
    problems.reasons[f"{rid}#dup{line}"] = "duplicate_id"


def _row_values(
    src: CsvFile,
    line: int,
    cells: tuple[str, ...],
    cols: Sequence[str],
    idx: Sequence[int],
    problems: Problems,
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
    src: CsvFile,
    line: int,
    values: np.ndarray,
    cols: Sequence[str],
    tolerance: float,
    problems: Problems,
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


def count_reasons(reasons: dict[str, str]) -> dict[str, int]:
    """How many runs were dropped per reason, by reason name."""
    return dict(sorted(Counter(reasons.values()).items()))


def check_tolerance(tolerance: float) -> None:
    if not (math.isfinite(tolerance) and 0 <= tolerance < 1):
        raise ConfigError(f"tolerance must be in [0, 1), got {tolerance}")
