"""The core libraries never import prefect (design rule: the Prefect layer stays thin)."""

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
