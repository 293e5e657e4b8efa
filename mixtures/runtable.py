"""The one table of runs: mixture weights, metrics, fidelities and costs in LONG format.

Each row is ``(run_id, field, key, value)``: ``field`` is one of ``FIELDS`` and ``key`` names the
domain (weights), the metric, the fidelity (``model_params``, ``tokens``, ...) or the cost. Arrays
are always built by joining on ``run_id``/``key``, never by row position; rows of every array
follow ``run_ids`` (sorted) and columns follow ``domains`` (sorted) unless domains are given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from mixtures.errors import ConfigError, DataError
from mixtures.io import atomic_path
from mixtures.target_expr import parse_target

RUN_TABLE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.Utf8(),
    "field": pl.Utf8(),
    "key": pl.Utf8(),
    "value": pl.Float64(),
}
FIELDS = ("weight", "metric", "fidelity", "cost")
#: Weights of a run must sum to 1 within this: RegMix stores weights rounded to 3 decimals, so
#: its rows sum to 1 only within 0.004.
WEIGHT_SUM_TOLERANCE = 0.005
#: Key under which ``from_arrays`` stores a run's cost.
COST_KEY = "cost"
#: Column prefixes of ``RunTable.wide``, per field.
_WIDE_PREFIXES = (("weight", "w:"), ("metric", "m:"), ("fidelity", "f:"), ("cost", "c:"))


@dataclass(frozen=True, eq=False)
class RunTable:
    """Validated long table of runs; see the module docstring for the layout.

    Construction checks: exact schema, ``field`` in FIELDS, no nulls, finite values, no duplicate
    ``(run_id, field, key)``, every run has a weight for every domain (missing weights are an
    error, not 0), weights >= 0 summing to 1 within ``WEIGHT_SUM_TOLERANCE``. The frame is kept
    sorted by (run_id, field, key) so equal tables write identical files.
    """

    long: pl.DataFrame

    def __post_init__(self) -> None:
        if not isinstance(self.long, pl.DataFrame):
            raise DataError(f"RunTable needs a polars DataFrame, got {type(self.long).__name__}")
        _check_schema(self.long)
        _check_cells(self.long)
        _check_weights(self.long)
        object.__setattr__(self, "long", self.long.sort(["run_id", "field", "key"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunTable):
            return NotImplemented
        return self.long.equals(other.long)

    __hash__ = None  # type: ignore[assignment]  # a DataFrame is mutable underneath

    # ------------------------------------------------------------------ construction and I/O
    @classmethod
    def from_arrays(
        cls,
        run_ids: Sequence[str],
        domains: Sequence[str],
        weights: np.ndarray,
        metrics: Mapping[str, np.ndarray],
        *,
        fidelity: Mapping[str, np.ndarray] | None = None,
        cost: np.ndarray | None = None,
    ) -> RunTable:
        """Build from arrays aligned with ``run_ids``: weights (n, d) in ``domains`` order,
        each metric/fidelity (n,), cost (n,). Zero weights are stored as explicit zeros."""
        ids = [str(r) for r in run_ids]
        n = len(ids)
        w = np.asarray(weights, dtype=float)
        if w.shape != (n, len(domains)):
            raise DataError(f"weights have shape {w.shape}, expected ({n}, {len(domains)})")
        parts = [_long_part(ids, "weight", name, w[:, j]) for j, name in enumerate(domains)]
        for field, columns in (("metric", metrics), ("fidelity", fidelity or {})):
            for name, values in columns.items():
                parts.append(_long_part(ids, field, name, _column(values, n, f"{field} {name!r}")))
        if cost is not None:
            parts.append(_long_part(ids, "cost", COST_KEY, _column(cost, n, "cost")))
        if not parts:
            return cls(pl.DataFrame(schema=RUN_TABLE_SCHEMA))
        return cls(pl.concat(parts))

    @classmethod
    def read(cls, path: str | Path) -> RunTable:
        """Read and validate a Parquet run table; DataError names the file and the problem."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"run table {p} does not exist")
        try:
            frame = pl.read_parquet(p)
        except Exception as exc:  # polars raises several unrelated types for unreadable files
            raise DataError(f"run table {p} is not a readable Parquet file: {exc}") from exc
        try:
            return cls(frame)
        except DataError as exc:
            raise DataError(f"run table {p}: {exc}") from exc

    def write(self, path: str | Path) -> Path:
        """Write Parquet atomically (temp file in the same folder, then rename); return the path."""
        with atomic_path(path) as tmp:
            self.long.write_parquet(tmp)
        return Path(path)

    # ------------------------------------------------------------------ views
    @property
    def domains(self) -> tuple[str, ...]:
        """Sorted domain names."""
        return self._keys("weight")

    @property
    def metrics(self) -> tuple[str, ...]:
        """Sorted metric names (not every run must have every metric)."""
        return self._keys("metric")

    @property
    def fidelities(self) -> tuple[str, ...]:
        """Sorted fidelity keys, e.g. ``model_params``, ``tokens``."""
        return self._keys("fidelity")

    @property
    def run_ids(self) -> tuple[str, ...]:
        """Sorted run ids: the row order of every array this table returns."""
        return tuple(self.long.get_column("run_id").unique().sort().to_list())

    def __len__(self) -> int:
        return self.long.get_column("run_id").n_unique()

    def weights(self, domains: Sequence[str] | None = None) -> np.ndarray:
        """Weights (n, d): rows in ``run_ids`` order, columns in ``domains`` (default: all)."""
        names = tuple(self.domains if domains is None else domains)
        unknown = sorted(set(names) - set(self.domains))
        if unknown:
            raise DataError(f"unknown domain(s) {unknown}; the table has {list(self.domains)}")
        return self._matrix("weight", names)

    def values(self, field: str, key: str) -> np.ndarray:
        """Values (n,) of one ``field``/``key`` in ``run_ids`` order; NaN where a run lacks it."""
        if field not in FIELDS:
            raise DataError(f"unknown field {field!r}; expected one of {FIELDS}")
        return self._matrix(field, (key,))[:, 0]

    def target(self, expr: str) -> np.ndarray:
        """Target values (n,) in ``run_ids`` order from a metric expression: one metric, or
        ``mean(...)``, ``sum(...)`` or a weighted sum of metrics (grammar: ``target_expr``).

        Raises DataError for an unknown metric (listing the available ones) or a run lacking a
        metric (naming the run), ConfigError for a malformed expression.
        """
        terms = parse_target(expr, self.metrics)
        available = self.metrics
        for _, name in terms:
            if name not in available:
                raise DataError(
                    f"unknown metric {name!r} in target {expr!r}; available: {list(available)}"
                )
        values = self._matrix("metric", tuple(name for _, name in terms))  # (n, t)
        missing = np.isnan(values)
        if missing.any():
            i, j = np.argwhere(missing)[0]
            raise DataError(
                f"run {self.run_ids[i]!r} has no value for metric {terms[j][1]!r} "
                f"({int(missing.any(axis=1).sum())} run(s) lack some metric of {expr!r})"
            )
        coefs = np.array([c for c, _ in terms])
        return values @ coefs

    def select(self, run_ids: Sequence[str]) -> RunTable:
        """The runs ``run_ids`` (each must exist) as a new table."""
        wanted = [str(r) for r in run_ids]
        unknown = sorted(set(wanted) - set(self.run_ids))
        if unknown:
            shown = unknown[:10]
            raise DataError(f"unknown run id(s) {shown} ({len(unknown)} in all) in select")
        return RunTable(self.long.filter(pl.col("run_id").is_in(wanted)))

    def concat(self, other: RunTable) -> RunTable:
        """Both tables' runs; DataError on shared run ids or different domain sets."""
        shared = sorted(set(self.run_ids) & set(other.run_ids))
        if shared:
            raise DataError(f"cannot concat: {len(shared)} run id(s) in both tables: {shared[:10]}")
        if len(self) and len(other) and self.domains != other.domains:
            raise DataError(
                f"cannot concat tables over different domains: {list(self.domains)} vs "
                f"{list(other.domains)} (a missing weight is not silently 0)"
            )
        return RunTable(pl.concat([self.long, other.long]))

    def wide(self) -> pl.DataFrame:
        """One row per run (``run_ids`` order): ``run_id``, ``w:<domain>``, ``m:<metric>``, then
        ``f:<fidelity>`` and ``c:<cost>`` when present. Missing metrics are null."""
        frame = pl.DataFrame({"run_id": list(self.run_ids)}, schema={"run_id": pl.Utf8()})
        for field, prefix in _WIDE_PREFIXES:
            part = self.long.filter(pl.col("field") == field)
            if part.height == 0:
                continue
            keys = sorted(part.get_column("key").unique().to_list())
            piv = part.pivot(on="key", index="run_id", values="value")
            piv = piv.select(["run_id", *keys]).rename({k: prefix + k for k in keys})
            frame = frame.join(piv, on="run_id", how="left")
        return frame

    # ------------------------------------------------------------------ helpers
    def _keys(self, field: str) -> tuple[str, ...]:
        keys = self.long.filter(pl.col("field") == field).get_column("key").unique()
        return tuple(keys.sort().to_list())

    def _matrix(self, field: str, keys: Sequence[str]) -> np.ndarray:
        """(n, len(keys)) values joined on run_id and key; NaN where a run lacks a key."""
        ids = pl.DataFrame({"run_id": list(self.run_ids)}, schema={"run_id": pl.Utf8()})
        out = np.full((len(ids), len(keys)), np.nan)
        part = self.long.filter((pl.col("field") == field) & pl.col("key").is_in(list(keys)))
        for j, key in enumerate(keys):
            col = part.filter(pl.col("key") == key).select(["run_id", "value"])
            joined = ids.join(col, on="run_id", how="left", maintain_order="left")
            out[:, j] = joined.get_column("value").fill_null(np.nan).to_numpy()
        return out


def domain_map(
    source: Sequence[str], target: Sequence[str], rules: Sequence[tuple[str, str]]
) -> np.ndarray:
    """The matrix (len(source), len(target)) that carries weights over ``source`` domains onto
    ``target`` domains: ``weights @ domain_map(...)``. Reuse of an earlier swarm whose domains
    were renamed, split or merged (e.g. Olmix's reuse swarm, whose unchanged domains are one
    ``existing``).

    ``rules`` are ``(pattern, name)`` pairs, the first match wins; a pattern may hold one ``*``,
    and a ``*`` in ``name`` is replaced by what it matched (``("s2pdf:*", "s2pdfv1:*")``,
    ``("*", "existing")``). Domains that land on the same name are summed. A source domain that
    no rule matches, or a name that is not a target domain, is a ConfigError naming it.
    """
    targets = {name: j for j, name in enumerate(target)}
    compiled = []
    for pattern, name in rules:
        if pattern.count("*") > 1 or name.count("*") > 1:
            raise ConfigError(f"domain rule {pattern}={name}: at most one '*' on each side")
        regex = re.compile("^" + re.escape(pattern).replace(r"\*", "(.*)") + "$")
        compiled.append((regex, pattern, name))
    out = np.zeros((len(source), len(target)))
    for i, domain in enumerate(source):
        for regex, pattern, name in compiled:
            m = regex.match(domain)
            if m is None:
                continue
            mapped = name.replace("*", m.group(1)) if "*" in name and m.groups() else name
            if mapped not in targets:
                raise ConfigError(
                    f"domain rule {pattern}={name} maps {domain!r} to {mapped!r}, which is not "
                    f"one of the target domains {list(target)}"
                )
            out[i, targets[mapped]] = 1.0
            break
        else:
            raise ConfigError(f"no domain rule matches {domain!r} (rules: {list(rules)})")
    return out


def _long_part(ids: list[str], field: str, key: str, values: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"run_id": ids, "field": [field] * len(ids), "key": [key] * len(ids), "value": values},
        schema=RUN_TABLE_SCHEMA,
    )


def _column(values: np.ndarray, n: int, label: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise DataError(f"{label} has shape {arr.shape}, expected ({n},)")
    return arr


def _check_schema(frame: pl.DataFrame) -> None:
    got = dict(frame.schema)
    if list(got) != list(RUN_TABLE_SCHEMA) or any(got[c] != t for c, t in RUN_TABLE_SCHEMA.items()):
        expected = {c: str(t) for c, t in RUN_TABLE_SCHEMA.items()}
        raise DataError(
            f"run table schema is {{{', '.join(f'{c}: {t}' for c, t in got.items())}}}, "
            f"expected {expected}"
        )


def _first_row(frame: pl.DataFrame, mask: pl.Expr) -> dict[str, object] | None:
    bad = frame.filter(mask)
    return bad.row(0, named=True) if bad.height else None


def _check_cells(frame: pl.DataFrame) -> None:
    for col in RUN_TABLE_SCHEMA:
        row = _first_row(frame, pl.col(col).is_null())
        if row is not None:
            raise DataError(f"null {col} in run table row {row}")
    row = _first_row(frame, ~pl.col("field").is_in(list(FIELDS)))
    if row is not None:
        raise DataError(
            f"run {row['run_id']!r}: unknown field {row['field']!r} (key {row['key']!r}); "
            f"expected one of {FIELDS}"
        )
    row = _first_row(frame, ~pl.col("value").is_finite())
    if row is not None:
        raise DataError(
            f"run {row['run_id']!r}: {row['field']} {row['key']!r} is {row['value']}, "
            "expected a finite number"
        )
    dup = frame.filter(pl.struct(["run_id", "field", "key"]).is_duplicated())
    if dup.height:
        r = dup.row(0, named=True)
        raise DataError(
            f"run {r['run_id']!r}: {r['field']} {r['key']!r} appears {dup.height} times in the "
            "run table, expected once per (run_id, field, key)"
        )


def _check_weights(frame: pl.DataFrame) -> None:
    w = frame.filter(pl.col("field") == "weight")
    row = _first_row(w, pl.col("value") < 0)
    if row is not None:
        raise DataError(f"run {row['run_id']!r}: weight of {row['key']!r} is {row['value']} < 0")
    domains = w.get_column("key").unique().sort().to_list()
    counts = w.group_by("run_id").agg(pl.len().alias("n"), pl.col("value").sum().alias("total"))
    runs = frame.select("run_id").unique()
    counts = runs.join(counts, on="run_id", how="left").sort("run_id")
    incomplete = counts.filter(pl.col("n").is_null() | (pl.col("n") < len(domains)))
    if incomplete.height:
        run = incomplete.row(0, named=True)["run_id"]
        have = set(w.filter(pl.col("run_id") == run).get_column("key").to_list())
        missing = [d for d in domains if d not in have]
        raise DataError(
            f"run {run!r} has no weight for domain(s) {missing or domains}; every run needs an "
            f"explicit weight (0 included) for every domain ({incomplete.height} run(s) affected)"
        )
    off = counts.filter((pl.col("total") - 1.0).abs() > WEIGHT_SUM_TOLERANCE)
    if off.height:
        run = off.row(0, named=True)
        raise DataError(
            f"run {run['run_id']!r}: weights sum to {run['total']:.6g}, expected 1 within "
            f"{WEIGHT_SUM_TOLERANCE} ({off.height} run(s) affected)"
        )
