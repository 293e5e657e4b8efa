"""Replaying an optimizer on a table of finished runs, looking the results up instead of
training anything: runs until a pool top-1% mixture is run, simple regret, and the saving over
uniform random draws (exact, ``random_runs_to_top``). Deterministic for a given seed: every
repeat draws from its own child of ``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from mixtures.constraints import Bounds
from mixtures.errors import ConfigError
from mixtures.evaluation.common import check_table, run_jobs
from mixtures.optimizers import Optimizer, make_optimizer


def replay(
    X: np.ndarray,
    y: np.ndarray,
    *,
    domains: Sequence[str],
    optimizer: str | type[Optimizer],
    budget: int,
    repeats: int,
    seed: int,
    maximize: bool = False,
    batch: int | None = 1,
    top_fraction: float = 0.01,
    regret_at: Sequence[int] = (16, 32, 64),
    optimizer_params: Mapping[str, Any] | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Replay ``optimizer`` on the pool of finished runs ``X`` (n, d) with results ``y`` (n,).

    ``optimizer`` is a ``make_optimizer`` name or an ``Optimizer`` subclass (e.g. a prototype
    being measured), built with the pool-mode arguments and ``optimizer_params``.

    Each repeat builds a fresh optimizer in pool mode (its own seed), asks its initial design
    (``n_init`` for model-based optimizers, else ``batch``), then asks ``batch`` at a time
    (``batch`` None: everything left at once, RegMix's one shot) until ``budget`` runs, telling
    it the pool's results. Reported per repeat and as medians: ``runs_to_top`` (1-based number
    of runs until one of the ``ceil(top_fraction * n)`` best pool runs was run; None if never)
    and the simple regret after each of ``regret_at`` runs. A repeat ends early once it has run
    the pool's best mixture (the regret is 0 from there on: its ``curve`` is padded with 0 and
    its ``order`` lists the runs actually made). ``workers`` > 1 runs the repeats in that many
    processes; the results are the same as with one.
    """
    X, y = check_table(X, y, "pool")
    n = X.shape[0]
    if not 1 <= budget <= n:
        raise ConfigError(f"budget must be between 1 and the pool size {n}, got {budget}")
    if repeats < 1 or (batch is not None and batch < 1):
        raise ConfigError(f"repeats and batch must be >= 1, got {repeats} and {batch}")
    if not 0 < top_fraction < 1:
        raise ConfigError(f"top_fraction must be in (0, 1), got {top_fraction}")
    signed = -y if maximize else y
    n_top = math.ceil(top_fraction * n)
    top = set(np.argsort(signed, kind="stable")[:n_top].tolist())
    # Runs with the pool's best value: once one is run the regret is 0 for good, so the repeat
    # stops there (its curve is padded with 0) instead of asking for the rest of the budget.
    best = set(np.flatnonzero(signed == signed.min()).tolist())
    params = dict(optimizer_params or {})
    probe = _pool_optimizer(X, domains, optimizer, seed, maximize, params)  # bad input: fail now
    # runs made uniformly at random before a model chooses (None: all of them)
    n_random = budget if probe.random_start is None else probe.random_start
    jobs = [
        {"seed": int(child.generate_state(1)[0])}
        for child in np.random.SeedSequence(seed).spawn(repeats)
    ]
    shared = {
        "X": X,
        "y": y,
        "domains": list(domains),
        "optimizer": optimizer,
        "budget": budget,
        "maximize": maximize,
        "batch": batch,
        "params": params,
        "stop_at": best,
    }
    per_repeat = []
    for rep, order in enumerate(run_jobs(_replay_once, jobs, shared, workers)):
        best_so_far = np.minimum.accumulate(signed[order])
        best_so_far = np.pad(best_so_far, (0, budget - len(order)), mode="edge")  # (budget,)
        hit = next((i + 1 for i, j in enumerate(order) if j in top), None)
        per_repeat.append(
            {
                "repeat": rep,
                "runs_to_top": hit,
                "regret": {
                    str(k): float(best_so_far[k - 1] - signed.min())
                    for k in regret_at
                    if k <= budget
                },
                "curve": (best_so_far - signed.min()).tolist(),
                "order": [int(i) for i in order],
            }
        )
    return {
        "optimizer": optimizer if isinstance(optimizer, str) else optimizer.__name__,
        "params": params,
        "pool": n,
        "budget": budget,
        "repeats": repeats,
        "batch": batch,
        "seed": seed,
        "maximize": maximize,
        "top_fraction": top_fraction,
        "top_runs": n_top,
        "random_start": n_random,
        "per_repeat": per_repeat,
        "summary": _against_random(
            summarize_replay(per_repeat, budget=budget, regret_at=regret_at),
            n=n,
            n_top=n_top,
            n_random=n_random,
            budget=budget,
        ),
    }


def random_runs_to_top(pool: int, top: int) -> tuple[float, float]:
    """Mean and median number of uniform draws without replacement from ``pool`` runs until one
    of the ``top`` best is drawn: what random search needs, exactly (no simulation)."""
    if not 1 <= top <= pool:
        raise ConfigError(f"top must be between 1 and the pool size {pool}, got {top}")
    mean = (pool + 1) / (top + 1)
    m, survive = 0, 1.0  # P(no top run among the first m draws)
    while survive > 0.5:
        survive *= (pool - top - m) / (pool - m)
        m += 1
    return mean, float(m)


def random_start_floor(pool: int, top: int, n_random: int) -> float:
    """The lowest median runs to the top that any method can reach whose first ``n_random`` runs
    are uniform draws from the pool: even an oracle that runs a top mixture right after them
    needs ``n_random + 1`` runs whenever those draws missed, which happens more than half the
    time unless random's own median is within ``n_random``."""
    return min(random_runs_to_top(pool, top)[1], float(n_random + 1))


def _against_random(
    summary: dict[str, Any], *, n: int, n_top: int, n_random: int, budget: int
) -> dict[str, Any]:
    """``summary`` (of ``summarize_replay``) plus random search's exact expected runs to the top,
    the saving (random's mean / the median; None when the median repeat missed within the
    budget) and the ceiling on that saving that the optimizer's uniform random start leaves."""
    mean, median = random_runs_to_top(n, n_top)
    med = summary["runs_to_top_median"]
    # random through the whole budget (random search): random's own median
    floor = median if n_random >= budget else random_start_floor(n, n_top, n_random)
    return {
        **summary,
        "random_expected_mean": mean,
        "random_expected_median": median,
        "saving": None if med > budget else mean / med,
        "saving_ceiling": mean / floor,
    }


def summarize_replay(
    per_repeat: Sequence[Mapping[str, Any]], *, budget: int, regret_at: Sequence[int]
) -> dict[str, Any]:
    """Medians over repeats; a repeat that never hit the top counts as ``budget + 1`` runs."""
    hits = [r["runs_to_top"] if r["runs_to_top"] is not None else budget + 1 for r in per_repeat]
    return {
        "runs_to_top_median": float(np.median(hits)),
        "runs_to_top_mean": float(np.mean(hits)),
        "hit_rate": float(np.mean([r["runs_to_top"] is not None for r in per_repeat])),
        "regret_median": {
            str(k): float(np.median([r["regret"][str(k)] for r in per_repeat]))
            for k in regret_at
            if k <= budget
        },
    }


def plot_regret(result: Mapping[str, Any], path: str | Path) -> Path:
    """PNG of the simple-regret curves of a ``replay`` result: every repeat and the median."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    curves = np.array([r["curve"] for r in result["per_repeat"]])  # (repeats, budget)
    runs = np.arange(1, curves.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in curves:
        ax.plot(runs, c, color="tab:blue", alpha=0.2, lw=0.8)
    ax.plot(runs, np.median(curves, axis=0), color="tab:blue", lw=2, label="median")
    ax.set_xlabel("runs")
    ax.set_ylabel("simple regret")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_title(f"{result['optimizer']} on a pool of {result['pool']} runs")
    ax.legend()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _pool_optimizer(
    X: np.ndarray,
    domains: Sequence[str],
    optimizer: str | type[Optimizer],
    seed: int,
    maximize: bool,
    params: dict[str, Any],
) -> Optimizer:
    """A fresh ``optimizer`` (name or class) in pool mode over the rows of ``X``, unbounded."""
    build = optimizer if isinstance(optimizer, type) else partial(make_optimizer, optimizer)
    return build(
        domains=domains,
        bounds=Bounds.unbounded(domains),
        prior=X.mean(axis=0),  # unused in pool mode; the pool's mean is a valid stand-in
        seed=seed,
        pool=X,
        maximize=maximize,
        **params,
    )


def _replay_once(
    X: np.ndarray,
    y: np.ndarray,
    *,
    domains: Sequence[str],
    optimizer: str | type[Optimizer],
    budget: int,
    seed: int,
    maximize: bool,
    batch: int | None,
    params: dict[str, Any],
    stop_at: set[int] | None = None,
) -> list[int]:
    """Pool indices in the order the optimizer ran them (up to ``budget``; it stops early once
    a member of ``stop_at`` has been run)."""
    opt = _pool_optimizer(X, domains, optimizer, seed, maximize, params)
    order: list[int] = []
    first = getattr(opt, "n_init", batch or budget)
    while len(order) < budget:
        size = first if not order else (batch or budget)
        asked = opt.ask(min(size, budget - len(order)))
        idx = [opt.pool_index(m) for m in asked]
        opt.tell(asked, y[idx])
        order.extend(idx)
        if stop_at and stop_at.intersection(idx):
            break
    return order
