"""The core libraries never import prefect (the Prefect layer stays thin), and imports between
the packages point down the stages (tools/package_graph.py) with no import loops."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_packages_do_not_import_prefect():
    modules = [
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for pkg in ("mixtures", "proxies")
        for p in sorted((ROOT / pkg).rglob("*.py"))
    ]
    assert len(modules) > 8
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k == 'prefect' or k.startswith('prefect.'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"prefect imported by the core: {out.stdout}"


def _package_graph():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import package_graph
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return package_graph


def test_imports_point_down_the_stages_without_loops():
    package_graph = _package_graph()
    graph = package_graph.edges()
    assert ("cli", "flows") in graph and ("tasks", "proxies") in graph  # the graph is read
    assert package_graph.upward(graph) == []
    assert package_graph.module_cycles() == []


def test_the_layer_check_sees_an_upward_import_and_a_loop():
    package_graph = _package_graph()
    graph = package_graph.edges()
    graph[("mixtures", "cli")] += 1
    assert package_graph.upward(graph) == [("mixtures", "cli")]
    loop = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")}
    assert package_graph.find_cycles(loop) == [["a", "b", "c"]]
