"""PNG figures for reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def mixture_bars(mixtures: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Grouped bars: weight per domain for each named mixture."""
    names = list(mixtures)
    domains = sorted({d for m in mixtures.values() for d in m})
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(domains)), 3.6))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(domains))
    for i, name in enumerate(names):
        ax.bar(x + i * width, [mixtures[name].get(d, 0.0) for d in domains], width, label=name)
    ax.set_xticks(x + width * (len(names) - 1) / 2, domains, rotation=35, ha="right")
    ax.set_ylabel("weight")
    ax.set_title("mixture weights")
    ax.legend()
    return _save(fig, path)


def comparison_bars(rows: Sequence[Mapping[str, float]], path: Path, *, metric: str) -> Path:
    """Mean target per mixture with min-max over seeds as error bars."""
    labels = [str(r["label"]) for r in rows]
    means = np.array([r["mean"] for r in rows])
    lo = means - np.array([r["min"] for r in rows])
    hi = np.array([r["max"] for r in rows]) - means
    fig, ax = plt.subplots(figsize=(5, 3.4))
    colors = ["tab:green" if lab == "chosen" else "tab:gray" for lab in labels]
    ax.bar(labels, means, yerr=[lo, hi], color=colors, capsize=6)
    span = max(1e-6, float((means + hi).max() - (means - lo).min()))
    ax.set_ylim(float((means - lo).min()) - span, float((means + hi).max()) + 0.5 * span)
    ax.set_ylabel(metric)
    ax.set_title("target runs (bars: seed min-max)")
    return _save(fig, path)


def predicted_vs_measured(
    measured: np.ndarray, predicted: Mapping[str, np.ndarray], path: Path
) -> Path:
    """Out-of-fold predictions against measured values, one series per surrogate."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    for name, pred in predicted.items():
        ax.scatter(measured, pred, s=12, alpha=0.7, label=name)
    lo, hi = float(np.min(measured)), float(np.max(measured))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("measured target")
    ax.set_ylabel("cross-validated prediction")
    ax.legend()
    return _save(fig, path)


def regret_curve(values: Sequence[float], path: Path, *, label: str = "best so far") -> Path:
    """Best target found after each run (minimisation)."""
    best = np.minimum.accumulate(np.asarray(values, dtype=float))
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(np.arange(1, len(best) + 1), best, label=label)
    ax.set_xlabel("runs")
    ax.set_ylabel("best target")
    ax.legend()
    return _save(fig, path)
