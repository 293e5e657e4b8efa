"""Target expressions: a run's target as a weighted sum of its metrics (``RunTable.target``).

Grammar (whitespace around tokens is ignored):

- ``<metric>``: one metric by its exact name (names may contain ``/``, ``-``, ``.``...); an
  exact name always wins over the forms below;
- ``mean(<metric>, <metric>, ...)`` or ``sum(<metric>, ...)``;
- ``<term> + <term> + ...`` with ``<term>`` = ``<number> * <metric>`` or ``<metric>``, e.g.
  ``0.5*metric/a + 0.5*metric/b``; numbers may be signed (``-0.5*x``).

Metric names inside the compound forms must not contain ``,``, ``(``, ``)``, ``*`` or ``+``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from mixtures.errors import ConfigError

_FUNC_RE = re.compile(r"^\s*(mean|sum)\s*\((.*)\)\s*$", re.DOTALL)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TERM_RE = re.compile(rf"^\s*(?:({_NUMBER})\s*\*\s*)?(\S(?:.*\S)?)\s*$", re.DOTALL)
#: A '+' joins terms unless it is the sign of an exponent (``1e+3``).
_PLUS_RE = re.compile(r"(?<![0-9.][eE])\+")


def parse_target(expr: str, metrics: Sequence[str]) -> list[tuple[float, str]]:
    """(coefficient, metric) terms of ``expr`` (module doc); ``metrics``: the exact names known.
    ConfigError for a malformed expression; the names are not checked against ``metrics``."""
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"target must be a non-empty metric expression, got {expr!r}")
    text = expr.strip()
    if text in metrics:
        return [(1.0, text)]
    func = _FUNC_RE.match(text)
    if func:
        names = [a.strip() for a in func.group(2).split(",")]
        if not all(names):
            raise ConfigError(f"empty argument in target {expr!r}")
        coef = 1.0 / len(names) if func.group(1) == "mean" else 1.0
        return [(coef, name) for name in names]
    if "(" in text or ")" in text:
        raise ConfigError(
            f"cannot parse target {expr!r}: the only functions are mean(...) and sum(...)"
        )
    terms = []
    for part in _PLUS_RE.split(text):
        m = _TERM_RE.match(part)
        if not m or "*" in m.group(2):
            raise ConfigError(
                f"cannot parse term {part.strip()!r} of target {expr!r}; expected "
                "'<number>*<metric>' or '<metric>' joined by '+'"
            )
        coef = float(m.group(1)) if m.group(1) else 1.0
        if not math.isfinite(coef):
            raise ConfigError(f"coefficient {m.group(1)!r} in target {expr!r} is not finite")
        terms.append((coef, m.group(2)))
    return terms
