"""Prefect tasks at the ends of the main flow: set up the experiment folder, write the report."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from configs.schema import ExperimentConfig
from mixtures import plots
from tasks.common import git_sha, write_json


@task(name="setup-experiment", cache_policy=NO_CACHE)
def setup_experiment_task(config: ExperimentConfig, exp_dir: str) -> str:
    """Save the resolved config, seed and git sha beside the results."""
    exp = Path(exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "config.yaml").write_text(
        yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    )
    write_json(
        exp / "meta.json",
        {
            "seed": config.seed,
            "git_sha": git_sha(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return exp_dir


def _fmt(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _md_table(rows: list[dict], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |\n" for r in rows)


@task(name="report", cache_policy=NO_CACHE)
def report_task(
    config: ExperimentConfig,
    plan: dict,
    exp_dir: str,
    quality: list[dict],
    chosen: dict,
    comparison: list[dict],
) -> dict:
    """report.md + PNG plots in the experiment folder; the same report as a markdown artifact."""
    exp = Path(exp_dir)
    figs = exp / "plots"
    mixtures = {"chosen": chosen["mixture"], **plan["baselines"]}
    plots.mixture_bars(mixtures, figs / "mixtures.png")
    oof = json.loads((exp / "surrogate_oof.json").read_text())
    plots.predicted_vs_measured(
        np.array(oof["measured"]),
        {k: np.array(v) for k, v in oof["predicted"].items()},
        figs / "predicted_vs_measured.png",
    )
    t = config.target
    target_name = t.domain if t.kind == "domain" else t.kind
    measure = "validation loss"
    if t.kind == "custom":
        target_name = f"{t.evaluator}" + (f" on {t.domain}" if t.domain else "")
        measure = "custom evaluator"
    if comparison:
        label = f"{'value' if t.kind == 'custom' else 'loss'} ({target_name})"
        plots.comparison_bars(comparison, figs / "target_runs.png", metric=label)
    if config.search.method == "bo":
        # with bo_proxy the rounds are another scale, in their own table: their curve alone
        name = "runs_meta" if config.search.bo_proxy is None else "runs_bo_meta"
        meta = pl.read_parquet(exp / f"{name}.parquet").filter(pl.col("status") == "ok")
        # sweep runs first (mixNNN, baselines), then BO rounds in order (boRR-i)
        ordered = meta.sort(pl.col("label").str.starts_with("bo"), "label")
        plots.regret_curve(ordered["target"].to_list(), figs / "bo_regret.png")
    beats = bool(comparison) and any(r["beats_all_baselines"] for r in comparison)
    weights = [
        {"domain": d, **{k: m.get(d, 0.0) for k, m in mixtures.items()}}
        for d in plan["train_domains"]
    ]
    std = chosen["predicted_std"]
    scale = "proxy" if config.search.bo_proxy is None else "bo_proxy"
    lines = [
        f"# mixopt report: {config.name}",
        f"Target: **{t.kind}** {target_name} ({measure}, lower is better). "
        f"Training domains: {', '.join(plan['train_domains'])}.",
        "## Chosen mixture",
        f"Surrogate `{chosen['surrogate']}` predicts {chosen['predicted']:.4f}"
        + (f" ± {std:.4f}" if std is not None else "")
        + f" at {scale} scale (best {scale} run measured: "
        + f"{chosen['best_observed']['target']:.4f}).",
        _md_table(weights, ["domain", *mixtures]),
        "## Surrogate quality (k-fold, out of fold)",
        _md_table(quality, ["surrogate", "runs", "folds", "spearman", "pearson", "mae"]),
    ]
    if comparison:
        lines += [
            "## Target runs (larger model, several seeds)",
            _md_table(
                comparison,
                [
                    "label",
                    "mean",
                    "std",
                    "min",
                    "max",
                    "seeds",
                    "margin_vs_chosen",
                    "paired_margin_std",
                ],
            ),
            f"Chosen beats every baseline by more than the seed spread: **{beats}**.",
        ]
    pngs = sorted(figs.glob("*.png"))
    text = "\n\n".join(lines)
    (exp / "report.md").write_text(
        text + "\n\n" + "\n".join(f"![{p.stem}](plots/{p.name})" for p in pngs) + "\n"
    )
    # The Prefect UI renders data-URI images in markdown artifacts: the plots travel inline.
    inline = "\n\n".join(
        f"![{p.stem}](data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()})"
        for p in pngs
    )
    create_markdown_artifact(
        key=f"{config.name.replace('_', '-')}-report",
        markdown=text + "\n\n" + inline,
        description="mixture optimization report",
    )
    summary = {
        "experiment_dir": str(exp),
        "chosen": chosen,
        "comparison": comparison,
        "beats_all_baselines": beats,
        "report": str(exp / "report.md"),
    }
    write_json(exp / "summary.json", summary)
    return summary
