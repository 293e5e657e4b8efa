"""Prefect task at the end of the main flow: the report, as files and as a markdown artifact."""

from __future__ import annotations

import base64
import json

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from configs.experiment import ExperimentDir, Plan
from configs.schema import ExperimentConfig
from mixtures.io import write_json
from mixtures.report import (
    beats_all_baselines,
    describe_target,
    draw_plots,
    render_report,
    status_counts,
    write_report,
)


@task(name="report", cache_policy=NO_CACHE)
def report_task(
    config: ExperimentConfig,
    plan: Plan,
    exp: ExperimentDir,
    quality: list[dict],
    chosen: dict,
    comparison: list[dict],
    handoff: dict | None = None,
) -> dict:
    """report.md + PNG plots in the experiment folder; the same report as a markdown artifact.
    ``handoff``: where the target run went (``tasks.target.record_handoff_task``)."""
    t = config.target
    target = describe_target(t.kind, t.domain, t.evaluator)
    mixtures = {"chosen": chosen["mixture"], **plan.baselines}
    # with bo_proxy the BO rounds are another scale, in their own table: their curve alone
    stem = "runs" if config.search.bo_proxy is None else "runs_bo"
    pngs = draw_plots(
        exp.plots,
        mixtures=mixtures,
        oof_path=exp.surrogate_oof,
        comparison=comparison,
        target=target,
        search_meta=exp.table_meta(stem) if config.search.method == "bo" else None,
    )
    text = render_report(
        title=config.name,
        target_kind=t.kind,
        target=target,
        train_domains=plan.train_domains,
        mixtures=mixtures,
        chosen=chosen,
        scale=_scale(config),
        quality=quality,
        comparison=comparison,
        runs=_run_counts(config, exp),
        target_note=None if handoff is None else handoff["message"],
        merge=json.loads(exp.merge.read_text()) if config.search.merge is not None else None,
    )
    write_report(exp.report, text, pngs)
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
        "beats_all_baselines": beats_all_baselines(comparison),
        "target_handoff": handoff,
        "report": str(exp.report),
    }
    write_json(exp.summary, summary)
    return summary


def _scale(config: ExperimentConfig) -> str:
    """What the chosen mixture's prediction is at: the sweep's proxies, the bo_proxy runs, or
    the merged experts' estimates."""
    if config.search.bo_proxy is not None:
        return "bo_proxy"
    return "merged-estimate" if config.search.method == "merge" else "proxy"


def _run_counts(config: ExperimentConfig, exp: ExperimentDir) -> dict[str, dict[str, int]]:
    """Runs by status of each table behind the choice: the sweep's (and BO rounds'), and with
    ``search.bo_proxy`` the rounds' at that scale."""
    tables = {"proxy runs": "runs"}
    if config.search.bo_proxy is not None:
        tables["bo_proxy runs"] = "runs_bo"
    return {
        what: status_counts(exp.table_meta(stem))
        for what, stem in tables.items()
        if exp.table_meta(stem).is_file()
    }
