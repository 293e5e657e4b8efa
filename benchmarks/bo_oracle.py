"""Diagnostic: would BO reach one tenth of random if its GP knew the right hyper-parameters?

BO's default (``gp_hybrid_linear``, 4 random runs, q = 1) needs 19.5-21 runs to the top 1% on
Olmix's 64-domain swarm, where one tenth of random is 7.3 (bo_linear.md); ``gp_hybrid`` needs
13.5-20. Sessions 9-11 tried better ways to *learn* the GP from few runs (SAAS priors, per-family
GPs, a kernel shared by all metrics, a mixture of two GPs) for small gains. This script asks how
much better learning could give at most, for this model class and acquisition: BO whose GP's
hyper-parameters (kernel scales and length scales, noise, constant mean) and output scaling are
fitted once on the **whole pool**, the answer included, and then held fixed; at each step the GP
only conditions on the runs made so far. No real method has that information, so this is not a
method and nothing in mixopt is chosen from it.

Written down before any result: if the oracle GP's median runs stay above one tenth of random
on the 64-domain swarm's three targets, better hyper-parameter learning (priors, transfer from
earlier swarms, more metrics) cannot close the gap with this GP and acquisition; if it reaches
it, hyper-parameter transfer from earlier swarms (Olmix's reuse idea, applied to the kernel) is
the next thing to build.

A second step, added after the first's results (commit 5d1a89d ran the ``oracle_*`` columns;
the oracle ``gp_hybrid`` halved the runs on two of the swarm's targets and reached one tenth on
math, 7 runs, but needed more on code): can the length scales come from somewhere a user has?
``kernel_gp_hybrid`` keeps the oracle's kernel and noise but standardizes the target on the runs
made so far, as the shipped GP does, and drops the fitted constant mean (so only the kernel is
known); ``transfer_gp_hybrid`` is the same with the kernel fitted on the whole pool's *other*
evaluations: on Olmix's swarms the mean of the 27 metrics outside the MMLU, code and math
families (general tasks), on RegMix's pool the mean of the 12 other validation losses. That is
what an earlier swarm evaluated on other tasks, over the same domains, would give. Written down
before its results: kernel transfer is worth building only if ``transfer_gp_hybrid`` needs no
more runs than the learned ``gp_hybrid`` on all three targets of the 64-domain swarm and at
most 10 on at least two of them; otherwise the oracle's gain came from the target's own values.
Since that step was built into mixopt, both columns use the library's ``TransferredKernel`` (the
GP preset's own fit on the whole pool, its kernel and noise kept, the target standardized on the
runs so far); the first run used a hand-written equivalent here (e262907).

Cases: Olmix's 64-domain swarm (``full_recomputation``) and ``dclm`` (24 domains), the mean of
each task family's bits-per-byte metrics (MMLU, code, math), and RegMix's 768-run pool on
Pile-CC (issue 3's headline, 20 repeats). Both GPs, the same seeds, budget and repeats as
benchmarks/bo_linear.py, whose saved runs are the learned-GP reference: the 4 random runs of
every repeat are the same draws.

    .venv/bin/python benchmarks/bo_oracle.py --olmix /tmp/olmix    # about 8 minutes

Writes benchmarks/results/bo_oracle.json and .md.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from botorch.fit import fit_gpytorch_mll  # noqa: E402
from botorch.models import SingleTaskGP  # noqa: E402
from gpytorch.mlls import ExactMarginalLogLikelihood  # noqa: E402

from benchmarks.bo_linear import (  # noqa: E402
    SOURCE_POOL,
    case_row,
    pool_tables,
    saving,
)
from benchmarks.kernel_transfer import expressions  # noqa: E402
from benchmarks.replay_generality import replay_budget  # noqa: E402
from benchmarks.replay_public import replay_figures  # noqa: E402
from benchmarks.surrogate_fit import (  # noqa: E402
    RESULTS,
    case_args,
    header_md,
    load_results,
    rows_by_case,
    run_cases_resumable,
    run_meta,
    write_md,
)
from mixtures.optimizers.bo import BOOptimizer  # noqa: E402
from mixtures.surrogates import make_surrogate  # noqa: E402
from mixtures.surrogates.base import TargetTransform  # noqa: E402
from mixtures.surrogates.gp import GPSurrogate, torch_threads  # noqa: E402
from mixtures.surrogates.transfer import TransferredKernel  # noqa: E402

#: oracle variant -> the GP preset whose kernel and features it uses; its learned-GP reference
#: is bo_linear.json's column of the same preset
VARIANTS = {"gp_hybrid": "gp_hybrid", "hybrid_linear": "gp_hybrid_linear"}
HEADLINE_REPEATS = 20


def cases() -> list[tuple[str, str]]:
    out = [(pool, f) for pool in ("full_recomputation", "dclm") for f in ("mmlu", "code", "math")]
    return out + [("headline", "pile_cc")]


@functools.cache
def learned() -> dict[tuple[str, str], dict[str, Any]]:
    return rows_by_case(RESULTS / "bo_linear.json")


class OracleGP(GPSurrogate):
    """A GP with fixed hyper-parameters: ``state`` (a fitted SingleTaskGP's state dict, no
    outcome transform) on the target standardized as ``(z - mu) / sd`` with the whole pool's
    ``mu`` and ``sd``; fitting only conditions on the data. (The kernel-only columns use the
    library's ``TransferredKernel``, which standardizes on the data instead.)"""

    def __init__(
        self,
        *,
        state: dict,
        mu: float,
        sd: float,
        kernel: Any,
        features: Any,
        log_target: Any,
        max_iter: int,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            kernel=kernel,
            features=features,
            log_target=log_target,
            max_iter=max_iter,
            random_state=random_state,
        )
        self.state, self.mu, self.sd = state, mu, sd

    def _fit(self, F: np.ndarray, z: np.ndarray) -> None:
        x = torch.as_tensor(F, dtype=torch.float64)
        zs = torch.as_tensor((z - self.mu) / self.sd, dtype=torch.float64).unsqueeze(-1)
        model = SingleTaskGP(x, zs, covar_module=self.covar(F.shape[1]), outcome_transform=None)
        model.load_state_dict(self.state)
        model.eval()
        self.model_ = model

    def _predict(self, F: np.ndarray, return_std: bool) -> tuple[np.ndarray, np.ndarray | None]:
        mean, std = super()._predict(F, return_std)
        return mean * self.sd + self.mu, None if std is None else std * self.sd


def oracle_params(X: np.ndarray, y: np.ndarray, preset: str) -> dict[str, Any]:
    """The GP of ``preset`` fitted on the whole pool (minimized ``y``): what OracleGP holds."""
    gp = make_surrogate(preset, random_state=0)
    settings = {k: gp.get_params()[k] for k in ("kernel", "features", "log_target", "max_iter")}
    z = TargetTransform(y, gp.log_target).forward(y)
    mu, sd = float(z.mean()), float(z.std())
    F = gp.feature_matrix(X)
    x = torch.as_tensor(F, dtype=torch.float64)
    zs = torch.as_tensor((z - mu) / sd, dtype=torch.float64).unsqueeze(-1)
    with torch.random.fork_rng(), torch_threads(1):
        torch.manual_seed(0)
        model = SingleTaskGP(x, zs, covar_module=gp.covar(F.shape[1]), outcome_transform=None)
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": gp.max_iter}})
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    oracle = OracleGP(state=state, mu=mu, sd=sd, **settings).fit(X, y)
    model.eval()
    with torch.no_grad():
        direct = model.posterior(x).mean.squeeze(-1).numpy() * sd + mu
    got = np.log(oracle.predict(X)) if oracle.target_transform_.log else oracle.predict(X)
    if not np.allclose(got, direct, rtol=0, atol=1e-8):  # OracleGP must be that model
        raise SystemExit(f"OracleGP does not reproduce the oracle fit of {preset}")
    return {"state": state, "mu": mu, "sd": sd, **settings}


class OracleBO(BOOptimizer):
    """BO (pool mode, minimizing) whose GP is an OracleGP with the given ``oracle`` params."""

    def __init__(self, *, oracle: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.oracle = oracle

    def fit_surrogate(self) -> GPSurrogate:
        X, y = self.observed_arrays()
        return OracleGP(**self.oracle, random_state=self.seed).fit(X, self._signed(y))


def run_case(table: Any, pool: str, label: str, a: argparse.Namespace) -> dict[str, Any]:
    expr, n_metrics, other, n_other = expressions(table, SOURCE_POOL.get(pool, pool), label)
    X, y = table.weights(), table.target(expr)
    set_name = "headline" if pool == "headline" else "olmix"
    row = case_row(set_name, pool, label, n_metrics, y, len(table.domains))
    repeats = HEADLINE_REPEATS if pool == "headline" else a.repeats

    def bo_replay(column: str, optimizer: Any, params: dict[str, Any]) -> dict[str, Any]:
        return replay_figures(
            f"{pool} {label} {column}",
            X,
            y,
            domains=table.domains,
            optimizer=optimizer,
            budget=replay_budget(len(y)),
            repeats=repeats,
            seed=a.seed,
            batch=1,
            optimizer_params=params,
            workers=a.workers,
        )

    for variant, preset in VARIANTS.items():
        ref = learned()[(pool, label)][variant]
        row[variant] = dict(ref, source="bo_linear.json")
        oracle = {"surrogate": preset, "oracle": oracle_params(X, y, preset)}
        row[f"oracle_{variant}"] = bo_replay(f"oracle_{variant}", OracleBO, oracle)
    row["other_metrics"] = n_other
    for column, values in (("kernel_gp_hybrid", y), ("transfer_gp_hybrid", table.target(other))):
        kernel = TransferredKernel("gp_hybrid", random_state=a.seed).fit(X, values, table.domains)
        params = {"surrogate": "gp_hybrid", "kernel_from": kernel}
        row[column] = bo_replay(column, "bo", params)
    return row


def table_md(rows: list[dict[str, Any]]) -> str:
    cols = [c for v in VARIANTS for c in (v, f"oracle_{v}")]
    cols += [c for c in ("kernel_gp_hybrid", "transfer_gp_hybrid") if c in rows[0]]
    lines = [
        "| pool | target | runs / domains | random: expected | one tenth | "
        + " | ".join(f"{c}: median (saving)" for c in cols)
        + " |",
        "|---" * (5 + len(cols)) + "|",
    ]
    for r in rows:
        cells = [r["pool"], r["target"], f"{r['runs']} / {r['domains']}"]
        cells += [f"{r['random_mean']:.1f}", f"{r['random_mean'] / 10:.1f}"]
        for c in cols:
            s = saving(r, c)
            cells.append(f"{r[c]['median']:g} ({s:.1f}x)" if s else "not reached")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_md(rows: list[dict[str, Any]]) -> str:
    pairs = [(f"oracle_{v}", v) for v in VARIANTS]
    pairs += [(c, "gp_hybrid") for c in ("kernel_gp_hybrid", "transfer_gp_hybrid") if c in rows[0]]
    lines = []
    for column, ref in pairs:
        for r in rows:
            worst = r["budget"] + 1
            a = [worst if x is None else x for x in r[column]["per_repeat"]]
            b = [worst if x is None else x for x in r[ref]["per_repeat"]]
            faster = sum(x < z for x, z in zip(a, b, strict=True))
            slower = sum(x > z for x, z in zip(a, b, strict=True))
            lines.append(
                f"- {column} against {ref}, {r['pool']} {r['target']}: faster in {faster}, "
                f"slower in {slower} of {len(a)} repeats; runs {a}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = case_args(__doc__, "bo_oracle", argv)
    if args.render_only:
        meta, rows = load_results(args.out)
    else:
        table = pool_tables({}, args.olmix)
        meta, rows = run_cases_resumable(
            args.out,
            cases(),
            lambda pool, label: run_case(table(pool), pool, label, args),
            fresh=args.fresh,
            meta=lambda spent: run_meta(
                "bo_oracle.py", argv, wall_seconds=spent, repeats=args.repeats
            ),
            settings={"repeats": args.repeats, "seed": args.seed},
        )
    body = [
        header_md("BO with oracle GP hyper-parameters (a diagnostic, not a method)", meta)
        + "Median runs to the top 1%; learned = bo_linear.json (same seeds, so the same 4 random "
        "runs per repeat); oracle = the same GP with its hyper-parameters fitted on the whole "
        "pool and fixed. Misses count as budget + 1.\n",
        table_md(rows),
        "",
        paired_md(rows),
    ]
    write_md(args.out, "\n".join(body) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
