"""Does a sparse length-scale prior (SAAS) help the GP rank mixtures from few runs?

SAAS (Eriksson & Jankowiak, 2021) puts a half-Cauchy prior on each inverse squared length scale
under a global shrinkage, so that most domains are "off" unless the runs say otherwise: the
textbook answer for BO in many dimensions with few evaluations, as in Olmix's 64-domain swarm.
BoTorch fits it by MAP (``botorch.models.map_saas.add_saas_prior``), in about the time of a
plain GP. This prototype compares, on random train subsets of each pool, the Spearman rank
correlation on the runs not trained on of

- ``gp_hybrid``: BO's default (linear on w, linear and RBF-ARD on sqrt(w); BoTorch's
  dimension-scaled log-normal length-scale prior);
- ``hybrid_saas``: the same kernel with the SAAS prior on the RBF's length scales instead;
- ``saas``: BoTorch's MAP-SAAS kernel alone (Matern 5/2, ARD, SAAS prior) on sqrt(w).

All on a log target, standardized, as ``GPSurrogate`` does. The cases are every target that
benchmarks/replay_generality.py replays (RegMix's 768-run pool: all 13 losses; Olmix's swarms:
the mean of the 110 metrics and the three task families). Exploratory: nothing in mixopt uses it.
A scratch run on 7 of these targets (N = 16-64, 6 subsets) preceded it; this list, 6 subsets and
train sizes 16, 32 and 64 were set when the run started (2026-11-30 20:29) and committed while it
ran.

    .venv/bin/python benchmarks/saas_cv.py --olmix /tmp/olmix   # about 40 minutes, 1 core

Writes benchmarks/results/saas_cv.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from botorch.models.map_saas import add_saas_prior
from gpytorch.kernels import Kernel, LinearKernel, MaternKernel, RBFKernel, ScaleKernel
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_generality import (  # noqa: E402
    FAMILIES,
    OLMIX_POOLS,
    REGMIX_ALL,
    load_pool,
    target,
)
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load_results,
    run_cases_resumable,
    run_meta,
    write_md,
)
from mixtures.surrogates import make_surrogate  # noqa: E402
from mixtures.surrogates.base import Surrogate  # noqa: E402
from mixtures.surrogates.gp import GPSurrogate  # noqa: E402

SIZES = (16, 32, 64)
VARIANTS = ("gp_hybrid", "hybrid_saas", "saas")


def saas(kernel: Kernel) -> Kernel:
    """``kernel`` (ARD, float64) with the SAAS prior on its length scales, global shrinkage
    inferred (half-Cauchy(0.1))."""
    return add_saas_prior(kernel.double(), tau=None)


class SaasGP(GPSurrogate):
    """``GPSurrogate`` with a SAAS length-scale prior: ``kernel="hybrid"`` (features 'x+sqrt')
    puts it on the hybrid kernel's RBF; ``kernel="matern"`` (features 'sqrt') is BoTorch's
    MAP-SAAS kernel."""

    def covar(self, d: int) -> Kernel:
        if self.low_fidelity is not None:
            raise NotImplementedError("prototype: no low-fidelity input")
        if self.kernel == "matern":
            return ScaleKernel(saas(MaternKernel(nu=2.5, ard_num_dims=d)))
        k = d // 2
        raw, root = tuple(range(k)), tuple(range(k, d))
        return (
            ScaleKernel(LinearKernel(active_dims=raw))
            + ScaleKernel(LinearKernel(active_dims=root))
            + ScaleKernel(saas(RBFKernel(ard_num_dims=k, active_dims=root)))
        )


def make(variant: str, seed: int) -> Surrogate:
    if variant == "gp_hybrid":
        return make_surrogate("gp_hybrid", random_state=seed)
    if variant == "hybrid_saas":
        return SaasGP(kernel="hybrid", features="x+sqrt", random_state=seed)
    return SaasGP(kernel="matern", features="sqrt", random_state=seed)


def cases() -> list[tuple[str, str]]:
    out = [("regmix768", c) for c in REGMIX_ALL]
    for pool in OLMIX_POOLS:
        out.append((pool, "all"))
        if pool != "full_reuse_update_5_seed_0":
            out += [(pool, f) for f in FAMILIES]
    return out


def run_case(table: Any, pool: str, label: str, subsets: int) -> dict[str, Any]:
    expr, n_metrics = target(table, pool, label)
    X, y = table.weights(), table.target(expr)
    row: dict[str, Any] = {
        "pool": pool,
        "target": label,
        "metrics": n_metrics,
        "runs": len(y),
        "domains": len(table.domains),
        "sizes": {},
    }
    for n in SIZES:
        if n >= len(y):
            continue
        per: dict[str, list[float]] = {v: [] for v in VARIANTS}
        secs: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
        for rep in range(subsets):
            order = np.random.default_rng(rep).permutation(len(y))
            train, test = order[:n], order[n:]
            for v in VARIANTS:
                started = time.perf_counter()
                model = make(v, rep).fit(X[train], y[train])
                secs[v] += time.perf_counter() - started
                per[v].append(100 * float(spearmanr(model.predict(X[test]), y[test])[0]))
        row["sizes"][str(n)] = {
            v: {"spearman": per[v], "fit_seconds": secs[v] / subsets} for v in VARIANTS
        }
        print(
            f"{pool} {label} N={n}: " + ", ".join(f"{v} {np.mean(per[v]):.1f}" for v in VARIANTS),
            flush=True,
        )
    return row


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pool | target (metrics) | runs / domains | train runs | gp_hybrid | hybrid_saas "
        "(better in) | saas (better in) | fit s (gp_hybrid / hybrid_saas / saas) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for n, res in r["sizes"].items():
            base = res["gp_hybrid"]["spearman"]
            cells = [f"{np.mean(base):.1f}"]
            for v in VARIANTS[1:]:
                s = res[v]["spearman"]
                better = sum(a > b for a, b in zip(s, base, strict=True))
                cells.append(f"{np.mean(s):.1f} ({better} of {len(s)})")
            secs = " / ".join(f"{res[v]['fit_seconds']:.1f}" for v in VARIANTS)
            lines.append(
                f"| {r['pool']} | {r['target']} ({r['metrics']}) | {r['runs']} / {r['domains']} "
                f"| {n} | " + " | ".join(cells) + f" | {secs} |"
            )
    return "\n".join(lines)


def summary_md(rows: list[dict[str, Any]]) -> str:
    """Mean difference to gp_hybrid per variant and train size, over the cases, by pool group."""
    out = []
    groups = {"RegMix (17 domains)": ("regmix768",), "Olmix (22-64 domains)": OLMIX_POOLS}
    for v in VARIANTS[1:]:
        for gname, pools in groups.items():
            parts = []
            for n in map(str, SIZES):
                diffs = [
                    np.mean(r["sizes"][n][v]["spearman"])
                    - np.mean(r["sizes"][n]["gp_hybrid"]["spearman"])
                    for r in rows
                    if r["pool"] in pools and n in r["sizes"]
                ]
                if diffs:
                    wins = sum(d > 0 for d in diffs)
                    parts.append(f"N={n} {np.mean(diffs):+.1f} ({wins} of {len(diffs)} better)")
            if parts:
                out.append(f"- {v} - gp_hybrid, {gname}: " + "; ".join(parts))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--olmix", type=Path, help="folder with Olmix's swarm CSVs")
    p.add_argument("--subsets", type=int, default=6)
    p.add_argument("--out", type=Path, default=RESULTS / "saas_cv.json")
    p.add_argument("--fresh", action="store_true", help="ignore results already in --out")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        tables: dict[str, Any] = {}

        def run(pool: str, label: str) -> dict[str, Any]:
            if pool not in tables:
                tables[pool] = load_pool(pool, args.olmix)
            return run_case(tables[pool], pool, label, args.subsets)

        meta, rows = run_cases_resumable(
            args.out,
            cases(),
            run,
            fresh=args.fresh,
            meta=lambda spent: run_meta(
                "saas_cv.py", argv, wall_seconds=spent, subsets=args.subsets
            ),
            settings={"subsets": args.subsets},
        )
    md = (
        header_md("A SAAS length-scale prior for the GP", meta)
        + "Spearman x100 on the runs not trained on, mean over "
        f"{meta['subsets']} random train subsets (those of benchmarks/family_cv.py); "
        "'better in': subsets where the variant ranks better than gp_hybrid. Olmix data: "
        "allenai/olmix (Apache-2.0) at 6df202e^, not in this repository.\n\n"
        + table_md(rows)
        + "\n\nMean difference to gp_hybrid (Spearman points) over the targets:\n\n"
        + summary_md(rows)
        + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
