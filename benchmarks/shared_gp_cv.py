"""Do GP hyper-parameters shared by all metric columns of a pool rank mixtures better?

A pool's runs are scored on many metrics (RegMix: 13 validation losses; Olmix: 110 task
metrics), and ``gp_hybrid`` fits its kernel's hyper-parameters (length scales, prior variances of
the linear parts) to the target alone, from as few as 16 runs. This prototype fits one
``gp_hybrid`` kernel, its hyper-parameters shared, to every metric column at once (each column
logged and standardized, with its own constant mean and noise; the marginal likelihoods are summed,
the kernel's priors counted once), so that 16-64 runs x 13-110 columns inform the length scales.
The target's prediction is the mean of the columns' back-transformed predictions (Olmix: the mean
of all 110 metrics; RegMix: the Pile-CC column itself). On Olmix's swarms a second variant shares
the kernel across the 4 task-family means of benchmarks/family_cv.py (code, math, MMLU, other)
and sums their predictions with the families' shares: 4 outputs instead of 110, so a fit costs
seconds, not a minute. Baseline: ``gp_hybrid`` on the target.
Spearman x100 on the runs not trained on, the same random subsets as benchmarks/family_cv.py.
Exploratory: nothing in mixopt uses it.

    .venv/bin/python benchmarks/shared_gp_cv.py --olmix /tmp/olmix   # about 40 minutes, 1 core

Writes benchmarks/results/shared_gp_cv.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from botorch.models.utils.gpytorch_modules import get_gaussian_likelihood_with_lognormal_prior
from botorch.optim.closures.core import ForwardBackwardClosure
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import Kernel
from gpytorch.means import ConstantMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.models import ExactGP
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.family_cv import SIZES, family_targets  # noqa: E402
from benchmarks.replay_generality import OLMIX_POOLS, load_pool  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    header_md,
    load_results,
    run_meta,
    save_results,
    write_md,
)
from mixtures.surrogates import make_surrogate  # noqa: E402
from mixtures.surrogates.base import featurize  # noqa: E402
from mixtures.surrogates.gp import covar_module  # noqa: E402

#: pool -> train sizes (Olmix: those of family_cv.py; RegMix: the issue's small sizes)
POOL_SIZES = {"regmix768": (16, 32, 64), **SIZES}
PILE_CC = "metric/the_pile_pile_cc_val_loss"


class SharedKernelGP(ExactGP):
    """m independent outputs (a batch) over the same inputs and one kernel: the kernel is built
    without a batch shape, so its hyper-parameters are shared; means and noises are per output."""

    def __init__(self, x: torch.Tensor, Z: torch.Tensor, covar: Kernel) -> None:
        m = Z.shape[0]
        likelihood = get_gaussian_likelihood_with_lognormal_prior(batch_shape=torch.Size([m]))
        super().__init__(x.expand(m, *x.shape), Z, likelihood)
        self.mean_module = ConstantMean(batch_shape=torch.Size([m]))
        self.covar_module = covar

    def forward(self, x: torch.Tensor) -> MultivariateNormal:
        return MultivariateNormal(self.mean_module(x), self.covar_module(x))


class SharedFit:
    """Fit on features ``F`` (n, d) and positive columns ``Y`` (n, m); predict all m columns."""

    def __init__(self, F: np.ndarray, Y: np.ndarray, max_iter: int = 200) -> None:
        logs = np.log(Y)
        self.mu, self.sd = logs.mean(axis=0), logs.std(axis=0) + 1e-12
        Z = torch.as_tensor(((logs - self.mu) / self.sd).T.copy(), dtype=torch.float64)
        x = torch.as_tensor(F, dtype=torch.float64)
        model = SharedKernelGP(x, Z, covar_module("hybrid", F.shape[1])).double()
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        mll.train()
        params = {k: p for k, p in mll.named_parameters() if p.requires_grad}

        def loss() -> torch.Tensor:
            out = model(*model.train_inputs)
            fit = model.likelihood(out).log_prob(Z).sum()
            prior = sum(
                p.log_prob(closure(module)).sum()
                for _, module, p, closure, _ in model.named_priors()
            )
            return -(fit + prior) / Z.numel()

        fit_gpytorch_mll_scipy(
            mll,
            parameters=params,
            closure=ForwardBackwardClosure(loss, params),
            options={"maxiter": max_iter},
        )
        model.eval()
        self.model = model

    def predict(self, F: np.ndarray) -> np.ndarray:
        """(t, m) predictions on the original scale (exp of the log-scale posterior mean)."""
        x = torch.as_tensor(F, dtype=torch.float64)
        m = self.model.train_targets.shape[0]
        with torch.no_grad():
            mean = self.model(x.expand(m, *x.shape)).mean.numpy().T
        return np.exp(mean * self.sd + self.mu)


def timed_fit(F: np.ndarray, Y: np.ndarray, seed: int) -> tuple[SharedFit, float]:
    """A ``SharedFit`` seeded inside a forked torch RNG, and its wall seconds."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        started = time.perf_counter()
        fit = SharedFit(F, Y)
    return fit, time.perf_counter() - started


def run_pool(pool: str, olmix: Path | None, subsets: int) -> list[dict[str, Any]]:
    table = load_pool(pool, olmix)
    X = table.weights()
    Y = np.stack([table.values("metric", m) for m in table.metrics], axis=1)
    cols = [table.metrics.index(PILE_CC)] if pool == "regmix768" else list(range(Y.shape[1]))
    y = Y[:, cols].mean(axis=1)
    F = featurize(X, "x+sqrt")
    # Olmix: the family means and their shares of the metrics
    fam = None if pool == "regmix768" else family_targets(table)[1:3]
    rows = []
    for n in POOL_SIZES[pool]:
        one, shared, families, started = [], [], [], time.perf_counter()
        fit_seconds: dict[str, list[float]] = {"shared": [], "families": []}
        for rep in range(subsets):
            order = np.random.default_rng(rep).permutation(len(y))
            train, test = order[:n], order[n:]
            base = make_surrogate("gp_hybrid", random_state=rep).fit(X[train], y[train])
            one.append(100 * spearmanr(base.predict(X[test]), y[test])[0])
            fit, secs = timed_fit(F[train], Y[train], rep)
            fit_seconds["shared"].append(secs)
            pred = fit.predict(F[test])[:, cols].mean(axis=1)
            shared.append(100 * spearmanr(pred, y[test])[0])
            if fam is not None:
                Yf, share = fam
                fit, secs = timed_fit(F[train], Yf[train], rep)
                fit_seconds["families"].append(secs)
                families.append(100 * spearmanr(fit.predict(F[test]) @ share, y[test])[0])
        rows.append(
            {
                "pool": pool,
                "runs": len(y),
                "domains": len(table.domains),
                "metrics": Y.shape[1],
                "target": "pile_cc" if pool == "regmix768" else f"mean of {len(cols)}",
                "train": n,
                "one": one,
                "shared": shared,
                "families": families,
                "fit_seconds": {
                    k: float(np.mean(v)) if v else None for k, v in fit_seconds.items()
                },
                "seconds": time.perf_counter() - started,
            }
        )
        print(
            f"{pool} N={n}: gp_hybrid {np.mean(one):.1f}, shared {np.mean(shared):.1f} "
            f"{np.round(shared, 1)}, families "
            f"{f'{np.mean(families):.1f}' if families else 'n/a'} "
            f"({rows[-1]['seconds']:.0f} s)",
            flush=True,
        )
    return rows


def table_md(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| pool | runs / domains / metrics | target | train runs | gp_hybrid on the target "
        "| shared kernel, all metrics (better in) | shared kernel, 4 family means (better in) "
        "| one fit, s (all / families) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = []
        for key in ("shared", "families"):
            if not r[key]:
                cells.append("n/a")
                continue
            better = sum(s > o for s, o in zip(r[key], r["one"], strict=True))
            cells.append(f"{np.mean(r[key]):.1f} ({better} of {len(r['one'])})")
        secs = " / ".join("-" if v is None else f"{v:.1f}" for v in r["fit_seconds"].values())
        lines.append(
            f"| {r['pool']} | {r['runs']} / {r['domains']} / {r['metrics']} | {r['target']} "
            f"| {r['train']} | {np.mean(r['one']):.1f} | {cells[0]} | {cells[1]} | {secs} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--olmix", type=Path, help="folder with Olmix's swarm CSVs")
    p.add_argument("--subsets", type=int, default=4)
    p.add_argument("--out", type=Path, default=RESULTS / "shared_gp_cv.json")
    p.add_argument("--render-only", action="store_true", help="rewrite the .md from the JSON")
    args = p.parse_args(argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        torch.set_num_threads(1)
        started, rows = time.perf_counter(), []
        for pool in ("regmix768", *OLMIX_POOLS):
            rows += run_pool(pool, args.olmix, args.subsets)
            meta = run_meta(
                "shared_gp_cv.py",
                argv,
                wall_seconds=time.perf_counter() - started,
                subsets=args.subsets,
            )
            save_results(args.out, meta, rows)
    md = (
        header_md("GP hyper-parameters shared by all metric columns", meta)
        + "Spearman x100 on the runs not trained on, mean over "
        f"{meta['subsets']} random subsets (those of family_cv.py). Olmix data: allenai/olmix "
        "(Apache-2.0) at 6df202e^, not in this repository.\n\n" + table_md(rows) + "\n"
    )
    write_md(args.out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
