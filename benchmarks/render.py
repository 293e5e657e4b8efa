"""Write the result files' tables into BENCHMARKS.md.

The document holds prose and, for each case, a block that this module owns::

    <!-- results: CASE -->
    (tables, the command, the machine and the date, generated)
    <!-- /results -->

Everything between the markers is replaced from ``<results>/CASE.json``; the rest of the
document is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.suite import Case, markdown, read_result
from mixtures.errors import ConfigError
from mixtures.io import atomic_write_text

BLOCK = re.compile(r"(<!-- results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def provenance(result: Mapping[str, Any]) -> str:
    """The lines under a case's tables: how to reproduce it, where and when it ran."""
    m = result["machine"]
    start, end = m.get("load_1min") or (None, None)
    where = f"{m['cores']} cores, {m['cpu']}"
    loads = [f"{v:.1f} at {when}" for v, when in ((start, "start"), (end, "end")) if v is not None]
    if loads:
        where += ", 1-min load " + ", ".join(loads)
    lines = [f"Command: `{result['command']}`", f"Machine: {where}; date: {result['date'][:10]}"]
    if result.get("wall_seconds") is not None:
        lines[-1] += f"; {result['wall_seconds']:.0f} s in all"
    if result.get("note"):
        lines.append(result["note"])
    return "  \n".join(lines)


def render_block(case: Case, result: Mapping[str, Any]) -> str:
    tables = [markdown(t) for t in case.tables(result["rows"])]
    return "\n\n".join([*tables, provenance(result)]) + "\n"


def render(
    doc: Path, results: Path, cases: Mapping[str, Case], *, keep_missing: bool = False
) -> list[str]:
    """Rewrite every results block of ``doc`` from ``results``; returns the cases rendered.
    A block whose result file is missing is an error, or left unchanged with ``keep_missing``."""
    rendered: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in cases:
            raise ConfigError(f"{doc}: block for unknown case {name!r}; cases: {sorted(cases)}")
        path = results / f"{name}.json"
        if not path.is_file():
            if keep_missing:
                return match[0]
            raise ConfigError(f"{doc}: no result file {path} for block {name!r}")
        result = read_result(path)
        rendered.append(name)
        return match[1] + "\n" + render_block(cases[name], result) + "\n" + match[4]

    text = doc.read_text()
    new = BLOCK.sub(replace, text)
    if new != text:
        atomic_write_text(doc, new)
    return rendered
