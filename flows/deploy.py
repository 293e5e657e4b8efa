"""Deployments of ``optimize_mixture`` and ``target_run``, served with ``flow.serve``.

``mixopt serve --config configs/demo.yaml`` registers both deployments with the Prefect API
(``PREFECT_API_URL``; start one with ``prefect server start --host 127.0.0.1``) and runs their
flow runs in this process's machine until interrupted:

- ``optimize_mixture/<name>``: re-optimizes on a cron schedule (default Mondays 03:00 UTC);
  its ``config`` parameter is the pydantic ``ExperimentConfig``, so the UI's "Custom run" shows
  it as a form, pre-filled with the served config.
- ``target_run/<name>``: no schedule; ``optimize_mixture`` creates its runs with
  ``schedule_target_run`` (the chosen mixture as parameters), or you do from the UI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect.deployments.runner import RunnerDeployment

from configs.schema import ExperimentConfig
from flows.cli_serve import DEFAULT_CRON, TRAIN_TAG, add_serve_arguments
from mixtures.errors import ConfigError, MixoptError


def deployment_name(config: ExperimentConfig) -> str:
    """The default name of both deployments of an experiment: its config name."""
    return config.name


def _exp_dir(config: ExperimentConfig, experiment_dir: str | None) -> str:
    # Served runs may start in another working directory: pass an absolute folder.
    return str(Path(experiment_dir or Path("runs") / config.name).resolve())


def build_deployments(
    config: ExperimentConfig,
    *,
    name: str | None = None,
    cron: str | None = DEFAULT_CRON,
    experiment_dir: str | None = None,
) -> list[RunnerDeployment]:
    """Deployments of optimize_mixture (on ``cron``; None = unscheduled) and target_run."""
    from flows.optimize import optimize_mixture
    from flows.target_run import target_run

    name = name or deployment_name(config)
    exp = _exp_dir(config, experiment_dir)
    params: dict[str, Any] = {"config": config.model_dump(mode="json"), "experiment_dir_path": exp}
    tags = ["mixopt", f"experiment:{config.name}"]
    optimize = optimize_mixture.to_deployment(
        name=name,
        cron=cron,
        parameters=params,
        tags=tags,
        description=f"Find the best mixture for experiment {config.name!r}; results in {exp}.",
    )
    target = target_run.to_deployment(
        name=name,
        parameters=params,
        tags=tags,
        description="Train the target-scale model on the given mixtures and the baselines.",
    )
    return [optimize, target]


def set_train_limit(limit: int, *, tag: str = TRAIN_TAG) -> None:
    """At most ``limit`` training tasks (tag ``tag``) at once, across every flow run."""
    from prefect import get_client

    if limit < 1:
        raise ConfigError(f"training concurrency limit must be >= 1, got {limit}")
    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag=tag, concurrency_limit=limit)


def serve_deployments(deployments: Sequence[RunnerDeployment], *, limit: int | None = None) -> None:
    """Register the deployments and run their flow runs here until SIGINT/SIGTERM."""
    from prefect import serve

    serve(*deployments, limit=limit)


def schedule_target_run(
    config: ExperimentConfig,
    chosen_mixture: dict[str, float],
    experiment_dir: str,
    *,
    deployment_name: str,
    at: datetime | None = None,
) -> str | None:
    """Create a ``target_run/<deployment_name>`` flow run for the chosen mixture; don't wait.

    Returns the flow run id, or None when that deployment does not exist (the embedded
    default, no server: the caller then runs ``target_run`` inline). ``at`` schedules it
    for later (timezone-aware datetime); None means now.
    """
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    full_name = f"target_run/{deployment_name}"
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return None
    flow_run = run_deployment(
        full_name,
        parameters={
            "config": config.model_dump(mode="json"),
            "mixtures": {"chosen": dict(chosen_mixture)},
            "experiment_dir_path": str(Path(experiment_dir).resolve()),
        },
        scheduled_time=at,
        timeout=0,
        tags=["mixopt", f"experiment:{config.name}", "chosen-mixture"],
    )
    return str(flow_run.id)


def cmd_serve(args: argparse.Namespace) -> int:
    """Build the deployments from the arguments and serve them (blocks)."""
    from configs.schema import load_config

    config = load_config(args.config, overrides=args.set)
    deployments = build_deployments(
        config,
        name=args.name,
        cron=None if args.no_schedule else args.cron,
        experiment_dir=args.experiment_dir,
    )
    if args.train_limit is not None:
        set_train_limit(args.train_limit)
    serve_deployments(deployments, limit=args.limit)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m flows.deploy``: the same as ``mixopt serve``."""
    parser = argparse.ArgumentParser(prog="python -m flows.deploy", description=__doc__)
    add_serve_arguments(parser)
    try:
        return cmd_serve(parser.parse_args(argv))
    except MixoptError as err:
        print(f"mixopt serve: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
