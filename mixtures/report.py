"""The report of a mixture search: markdown tables and PNG plots of the chosen mixture, the
surrogates' cross-validated quality and the target runs against the baselines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from mixtures import plots
from mixtures.io import atomic_write_text

QUALITY_COLUMNS = ["surrogate", "runs", "folds", "spearman", "pearson", "mae"]
#: Run statuses, in the order reports count them (``proxies.train.TrainResult.status``).
RUN_STATUSES = ("ok", "diverged", "failed")
#: A baseline's paired comparison with the chosen mixture (``proxies.compare``), as shown.
PAIRED_COLUMNS = (
    "pairs",
    "wins",
    "paired_diff_mean",
    "paired_diff_lo",
    "paired_diff_hi",
    "sign_p",
    "verdict",
)
COMPARISON_COLUMNS = [
    "label",
    "mean",
    "std",
    "min",
    "max",
    "seeds",
    "margin_vs_chosen",
    *PAIRED_COLUMNS,
]
#: How the paired differences read in a report.
PAIRED_NOTE = (
    "Paired by seed (a mixture's run with seed s shares its initialisation and batch order with "
    "the others'): per seed, baseline - chosen, positive when the chosen mixture is lower."
)


@dataclass(frozen=True)
class TargetText:
    """How the target reads in a report: its name, what is measured and the plot label."""

    name: str
    measure: str
    label: str


def describe_target(kind: str, domain: str | None, evaluator: str | None) -> TargetText:
    if kind == "custom":
        name = f"{evaluator}" + (f" on {domain}" if domain else "")
        return TargetText(name, "custom evaluator", f"value ({name})")
    name = domain if kind == "domain" and domain else kind
    return TargetText(name, "validation loss", f"loss ({name})")


def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def cell(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else "n/a" if v is None else str(v)

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(cell(r.get(c)) for c in columns) + " |\n" for r in rows)


def draw_plots(
    plots_dir: Path,
    *,
    mixtures: Mapping[str, Mapping[str, float]],
    oof_path: Path,
    comparison: Sequence[Mapping[str, Any]],
    target: TargetText,
    search_meta: Path | None,
) -> list[Path]:
    """Mixture bars, predicted vs measured (out of fold), the target runs and, for BO, the
    regret curve over the search's runs in the order they ran. Returns the PNGs."""
    plots.mixture_bars(dict(mixtures), plots_dir / "mixtures.png")
    oof = json.loads(oof_path.read_text())
    plots.predicted_vs_measured(
        np.array(oof["measured"]),
        {k: np.array(v) for k, v in oof["predicted"].items()},
        plots_dir / "predicted_vs_measured.png",
    )
    if comparison:
        plots.comparison_bars(list(comparison), plots_dir / "target_runs.png", metric=target.label)
    if search_meta is not None:
        meta = pl.read_parquet(search_meta).filter(pl.col("status") == "ok")
        # sweep runs first (mixNNN, baselines), then BO rounds in order (boRR-i)
        ordered = meta.sort(pl.col("label").str.starts_with("bo"), "label")
        plots.regret_curve(ordered["target"].to_list(), plots_dir / "bo_regret.png")
    return sorted(plots_dir.glob("*.png"))


def status_counts(meta: Path) -> dict[str, int]:
    """Runs of a run-metadata table (``<stem>_meta.parquet``) by status: ok, diverged, failed."""
    statuses = pl.read_parquet(meta, columns=["status"])["status"].to_list()
    return {s: statuses.count(s) for s in RUN_STATUSES}


def runs_line(what: str, counts: Mapping[str, int]) -> str:
    """``counts`` (status -> runs) as a sentence that says which runs the fit left out."""
    text = f"{what.capitalize()}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in RUN_STATUSES)
    left_out = counts.get("diverged", 0) + counts.get("failed", 0)
    if left_out:
        return (
            text + f". The {left_out} diverged or failed run(s) are left out of the surrogate "
            "fit (their errors are in the run metadata table)."
        )
    return text + "."


def render_report(
    *,
    title: str,
    target_kind: str,
    target: TargetText,
    train_domains: Sequence[str],
    mixtures: Mapping[str, Mapping[str, float]],
    chosen: Mapping[str, Any],
    scale: str,
    quality: Sequence[Mapping[str, Any]],
    comparison: Sequence[Mapping[str, Any]],
    runs: Mapping[str, Mapping[str, int]] | None = None,
    target_note: str | None = None,
    merge: Mapping[str, Any] | None = None,
) -> str:
    """The report's markdown without its images. ``runs``: what was run (e.g. "proxy runs")
    -> runs by status; ``chosen["warnings"]`` go at the top; ``target_note`` says where the
    target run went when its comparison is not in the report; ``merge``: the merged experts'
    record (merge.json), when the search used them."""
    weights = [
        {"domain": d, **{k: m.get(d, 0.0) for k, m in mixtures.items()}} for d in train_domains
    ]
    std = chosen["predicted_std"]
    lines = [f"# mixopt report: {title}"]
    lines += [f"> **Warning:** {w}" for w in chosen.get("warnings") or []]
    lines += [
        f"Target: **{target_kind}** {target.name} ({target.measure}, lower is better). "
        f"Training domains: {', '.join(train_domains)}.",
        *(runs_line(what, counts) for what, counts in (runs or {}).items()),
        "## Chosen mixture",
        f"Surrogate `{chosen['surrogate']}` predicts {chosen['predicted']:.4f}"
        + (f" ± {std:.4f}" if std is not None else "")
        + f" at {scale} scale (best {scale} run measured: "
        + f"{chosen['best_observed']['target']:.4f}).",
        md_table(weights, ["domain", *mixtures]),
        *([] if merge is None else ["## Merged experts", merge_line(merge)]),
        "## Surrogate quality (k-fold, out of fold)",
        md_table(quality, QUALITY_COLUMNS),
    ]
    if comparison:
        lines += [
            "## Target runs (larger model, several seeds)",
            md_table(comparison, COMPARISON_COLUMNS),
        ]
        paired = paired_lines(comparison, bold=True)
        if paired:
            *against, verdict = paired
            lines += [PAIRED_NOTE, "\n".join(f"- {line}" for line in against), verdict]
    elif target_note:
        lines += ["## Target runs", target_note]
    return "\n\n".join(lines)


def merge_line(merge: Mapping[str, Any]) -> str:
    """What the merged experts cost and how well their estimates rank the trained runs."""
    agree = merge.get("agreement") or {}
    rho = agree.get("spearman")
    ranking = (
        "no trained run to compare with"
        if not agree.get("runs")
        else f"Spearman {'undefined' if rho is None else f'{rho:.3f}'} with the "
        f"{agree['runs']} trained proxy runs of the same mixtures"
    )
    return (
        f"A shared trunk ({merge['trunk_fraction']:.0%} of the proxy's steps, on the "
        f"{merge['trunk_mixture']} mixture) and {len(merge['experts'])} experts, "
        f"{merge['cost_runs']:.2f} proxy runs of training; {merge['estimates']} merged "
        f"estimates, {ranking}."
    )


def beats_all_baselines(comparison: Sequence[Mapping[str, Any]]) -> bool:
    """The chosen mixture's verdict in the rows of ``proxies.compare.compare_target_runs``."""
    return bool(comparison) and any(r["beats_all_baselines"] for r in comparison)


def _interval(r: Mapping[str, Any]) -> str:
    return f"95% CI {r['paired_diff_lo']:.3f} to {r['paired_diff_hi']:.3f}"


def baseline_line(r: Mapping[str, Any]) -> str:
    """One baseline row of ``compare_target_runs`` as a sentence: "chosen vs uniform: lower on 5
    of 5 seeds, by 0.150 (95% CI 0.090 to 0.210): better". Differences are baseline - chosen."""
    return f"chosen vs {r['label']}: {paired_text(r)}"


def paired_text(r: Mapping[str, Any]) -> str:
    """``baseline_line`` without its "chosen vs <label>: " head."""
    pairs = r["pairs"] or 0
    if pairs == 0:
        return "no seed that both ran ok: inconclusive"
    text = f"lower on {r['wins']} of {pairs} seed{'s' * (pairs > 1)}, "
    text += f"by {r['paired_diff_mean']:.3f}"
    text += " (one seed: no interval)" if r["paired_diff_lo"] is None else f" ({_interval(r)})"
    text += f": {r['verdict']}"
    needed = r.get("seeds_needed")
    if r["verdict"] == "inconclusive" and needed is not None and needed > pairs:
        text += f" (with the same mean and spread, {needed} seeds would put the CI above 0)"
    return text


def verdict_line(comparison: Sequence[Mapping[str, Any]], *, bold: bool = False) -> str:
    """Whether the chosen mixture beats every baseline, and how surely: the closest interval
    when it does, the baselines it does not beat when it does not."""
    beats = beats_all_baselines(comparison)
    text = (
        "Chosen beats every baseline (paired by seed, the 95% CI of each difference above 0): "
        + (f"**{beats}**" if bold else str(beats))
    )
    baselines = [r for r in comparison if r["label"] != "chosen"]
    if not any(r["label"] == "chosen" for r in comparison):
        return text + "; no chosen run finished ok."
    if not baselines:
        return text + "; no baseline run finished ok."
    if beats:
        r = min(baselines, key=lambda r: r["paired_diff_lo"])
        return text + f"; closest: {r['label']}, by {r['paired_diff_mean']:.3f} ({_interval(r)})."
    short = [r for r in baselines if r["verdict"] != "better"]
    return text + "; " + ", ".join(f"{r['verdict']} against {r['label']}" for r in short) + "."


def paired_lines(comparison: Sequence[Mapping[str, Any]], *, bold: bool = False) -> list[str]:
    """``baseline_line`` per baseline, then ``verdict_line``; none for rows written before the
    comparison was paired (no ``verdict`` column)."""
    if not comparison or "verdict" not in comparison[0]:
        return []
    lines = [baseline_line(r) for r in comparison if r["label"] != "chosen"]
    return [*lines, verdict_line(comparison, bold=bold)]


def write_report(path: Path, text: str, pngs: Sequence[Path]) -> Path:
    """``report.md`` with its plots linked relative to it."""
    links = "\n".join(f"![{p.stem}]({p.relative_to(path.parent)})" for p in pngs)
    return atomic_write_text(path, text + "\n\n" + links + "\n")
