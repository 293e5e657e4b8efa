"""The benchmark suite's machinery: cases, their parameters and the one result format.

A ``Case`` is a named measurement of the product: a function of one frozen parameter model that
returns result rows, and a function that turns those rows into markdown tables. Running a case
writes ``<out>/<case>.json``::

    {"case": ..., "params": {...}, "command": "python -m benchmarks run ...",
     "machine": {"cpu": ..., "cores": ..., "python": ..., "load_1min": [start, end]},
     "date": ISO 8601 in UTC, "wall_seconds": ..., "git": short sha, "rows": [{...}, ...]}

and, for figures carried over from a run made another way, ``"note"`` saying so (its date and
machine are that run's). Nothing reads another case's results: ``render`` reads each file on its
own to write its tables.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mixtures.errors import ConfigError
from mixtures.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: A markdown table: header cells, then one list of cells per row.
Table = tuple[list[str], list[list[str]]]


class Params(BaseModel):
    """Base of every case's parameters: unknown keys are errors, values are frozen. A case's
    subclass says in its docstring's first line what the case measures, and in ``smoke`` the
    overrides that make it tiny."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    smoke: ClassVar[Mapping[str, Any]] = {}


@dataclass(frozen=True)
class Case:
    """One named benchmark: ``run(params, work)`` measures (``work`` is a scratch folder) and
    returns the rows; ``tables(rows)`` renders them."""

    name: str
    params: type[Params]
    run: Callable[[Any, Path], list[dict[str, Any]]]
    tables: Callable[[list[dict[str, Any]]], list[Table]]

    @property
    def summary(self) -> str:
        return (self.params.__doc__ or self.name).strip().splitlines()[0]

    @property
    def smoke(self) -> Mapping[str, Any]:
        return self.params.smoke


def parse_sets(sets: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` as a dict; values are YAML (``repeats=3``, ``methods=[bo]``)."""
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def resolve_params(case: Case, overrides: Mapping[str, Any]) -> Params:
    """The case's parameter model with ``overrides``; every problem named with its field."""
    try:
        return case.params(**overrides)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(params)'}: {e['msg']}" for e in err.errors()
        )
        fields = ", ".join(case.params.model_fields)
        raise ConfigError(f"{case.name}: {problems} (parameters: {fields})") from None


def command_line(case: Case, overrides: Mapping[str, Any]) -> str:
    """The runner command that reproduces a run with ``overrides``."""
    sets = " ".join(f"--set {shlex.quote(f'{k}={_yaml_value(v)}')}" for k, v in overrides.items())
    return f"python -m benchmarks run {case.name}" + (f" {sets}" if sets else "")


def run_case(case: Case, overrides: Mapping[str, Any], out: Path, work: Path) -> Path:
    """Run ``case`` with ``overrides`` and write ``out/<case>.json``; returns its path."""
    params = resolve_params(case, overrides)
    work.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    rows = case.run(params, work)
    if not rows:
        raise RuntimeError(f"{case.name} produced no rows")
    result = {
        "case": case.name,
        "params": params.model_dump(mode="json"),
        "command": command_line(case, overrides),
        "machine": machine(load_start),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "git": git_sha(),
        "rows": [_finite(r) for r in rows],
    }
    return write_json(out / f"{case.name}.json", result)


def read_result(path: Path) -> dict[str, Any]:
    """A result file, checked for the fields every result has."""
    data = json.loads(path.read_text())
    missing = {"case", "params", "command", "machine", "date", "rows"} - set(data)
    if missing:
        raise ConfigError(f"{path} is not a benchmark result: no {sorted(missing)}")
    return data


def machine(load_start: float | None = None) -> dict[str, Any]:
    """CPU model, cores, Python, and the 1-minute load average at start and end (timings on a
    shared machine are only as good as its load)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    end = round(os.getloadavg()[0], 2)
    start = end if load_start is None else round(load_start, 2)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_1min": [start, end],
    }


def git_sha() -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def fmt(value: Any, spec: str = "") -> str:
    """A table cell: ``n/a`` for a missing or non-finite number, else ``format(value, spec)``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


#: A table column: its header, and the cell it shows for a result row.
Column = tuple[str, Callable[[dict[str, Any]], str]]


def col(key: str, spec: str = "") -> Callable[[dict[str, Any]], str]:
    """The cell of a row's ``key``, formatted with ``spec``."""
    return lambda row: fmt(row.get(key), spec)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> Table:
    """One table line per row, one cell per column."""
    return [h for h, _ in columns], [[cell(r) for _, cell in columns] for r in rows]


def one_table(columns: Sequence[Column]) -> Callable[[list[dict[str, Any]]], list[Table]]:
    """A case's ``tables``: one table of ``columns``, a line per result row."""
    return lambda rows: [table(rows, columns)]


def markdown(table: Table) -> str:
    head, rows = table
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").strip()
