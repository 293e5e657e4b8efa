"""The import graph between mixopt's packages (rooms), as Graphviz DOT, from the working tree or
from any git revision: ``python tools/package_graph.py [--rev REV] [--out FILE.dot]``.

An arrow A -> B means some module of A imports a module of B (at top level or inside a
function). ``LAYERS`` is the order of the stages: every arrow must point to a lower layer.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Stage order, lowest first: a package may import only packages of a lower layer.
LAYERS: dict[str, int] = {
    "mixtures": 0,
    "proxies": 1,
    "configs": 2,
    "runtime": 3,
    "tasks": 4,
    "flows": 5,
    "cli": 6,
}


def _sources(rev: str | None) -> dict[str, str]:
    """path -> source of every .py file of the packages, at ``rev`` or in the working tree."""
    if rev is None:
        return {
            str(p.relative_to(ROOT)): p.read_text()
            for pkg in LAYERS
            for p in (ROOT / pkg).rglob("*.py")
        }
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pkgs = tuple(f"{pkg}/" for pkg in LAYERS)
    return {
        n: subprocess.run(
            ["git", "show", f"{rev}:{n}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for n in names
        if n.endswith(".py") and n.startswith(pkgs)
    }


def _module(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_edges(rev: str | None = None) -> set[tuple[str, str]]:
    """(importing module, imported module) over the packages' own modules."""
    sources = _sources(rev)
    modules = {_module(p) for p in sources}
    out: set[tuple[str, str]] = set()
    for path, text in sources.items():
        src = _module(path)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from pkg import name``: the submodule when ``name`` is one
                targets = [
                    f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            out |= {(src, t) for t in targets if t in modules and t != src}
    return out


def edges(rev: str | None = None) -> Counter[tuple[str, str]]:
    """(importing package, imported package) -> number of importing module pairs."""
    out: Counter[tuple[str, str]] = Counter()
    for a, b in module_edges(rev):
        pa, pb = a.split(".")[0], b.split(".")[0]
        if pa != pb:
            out[(pa, pb)] += 1
    return out


def module_cycles(rev: str | None = None) -> list[list[str]]:
    """Import loops between the packages' modules."""
    return find_cycles(module_edges(rev))


def find_cycles(pairs: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected groups of two or more nodes of the directed graph ``pairs``."""
    graph: dict[str, set[str]] = {}
    for a, b in pairs:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def upward(graph: Counter[tuple[str, str]]) -> list[tuple[str, str]]:
    """Arrows that do not point to a lower layer."""
    return sorted((a, b) for a, b in graph if LAYERS[b] >= LAYERS[a])


def to_dot(graph: Counter[tuple[str, str]], title: str, cycles: list[list[str]]) -> str:
    """Packages top to bottom in stage order; arrows labelled with the number of importing
    module pairs; upward arrows in red; module import loops listed under the title."""
    bad = set(upward(graph))
    loops = "".join(f"\\nimport loop: {' <-> '.join(c)}" for c in cycles)
    lines = [
        f'digraph "{title}" {{',
        "  rankdir=TB;",
        f'  label="{title}{loops}";',
        "  node [shape=box];",
    ]
    for pkg in LAYERS:
        lines.append(f'  "{pkg}";')
    for (a, b), n in sorted(graph.items()):
        color = ' color="red" fontcolor="red"' if (a, b) in bad else ""
        lines.append(f'  "{a}" -> "{b}" [label="{n}"{color}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rev", help="git revision (default: the working tree)")
    parser.add_argument("--out", type=Path, help="write DOT here (default: stdout)")
    args = parser.parse_args(argv)
    graph = edges(args.rev)
    cycles = module_cycles(args.rev)
    dot = to_dot(graph, f"mixopt packages ({args.rev or 'working tree'})", cycles)
    if args.out:
        args.out.write_text(dot)
    else:
        sys.stdout.write(dot)
    for a, b in upward(graph):
        print(f"upward import: {a} -> {b}", file=sys.stderr)
    for group in cycles:
        print(f"import loop: {' <-> '.join(group)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
