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
from typing import TYPE_CHECKING, Any

from cli.errors import add_debug_option, run_command
from mixtures.errors import ConfigError
from tasks import TRAIN_TAG

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

    from configs.schema import ExperimentConfig


#: Default re-optimization schedule: weekly, at night, when machines are idle.
DEFAULT_CRON = "0 3 * * 1"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command to the ``mixopt`` parser (Prefect's deployment code is imported
    only when the command runs)."""
    text = "serve the deployments (cron re-optimization, target runs) to a Prefect server"
    parser = subparsers.add_parser("serve", help=text, description=text)
    add_serve_arguments(parser)
    parser.set_defaults(func=cmd_serve)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mixopt serve`` (shared by the CLI and ``python -m cli.serve``)."""
    parser.add_argument("--config", required=True, help="experiment YAML served as the default")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="config override"
    )
    parser.add_argument("--name", help="deployment name (default: the experiment name)")
    parser.add_argument("--experiment-dir", help="results folder (default runs/<experiment name>)")
    parser.add_argument(
        "--cron", default=DEFAULT_CRON, help=f"re-optimization schedule (default {DEFAULT_CRON!r})"
    )
    parser.add_argument("--no-schedule", action="store_true", help="serve without a schedule")
    parser.add_argument("--limit", type=int, help="max concurrent flow runs of this server")
    parser.add_argument(
        "--train-limit",
        type=int,
        help=f"max training tasks (tag {TRAIN_TAG!r}) at once across all runs, e.g. GPUs",
    )


def deployment_name(config: ExperimentConfig) -> str:
    """The default name of both deployments of an experiment: its config name."""
    return config.name


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
    from configs.experiment import ExperimentDir

    # Served runs may start in another working directory: pass an absolute folder.
    exp = str(ExperimentDir.of(config.name, experiment_dir).resolved())
    params: dict[str, Any] = {"config": config.model_dump(mode="json"), "experiment_dir": exp}
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


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the arguments, then build the deployments and serve them (blocks)."""
    from cli import preflight
    from configs.experiment import ExperimentDir
    from configs.schema import load_config

    config = load_config(args.config, overrides=args.set)
    exp = ExperimentDir.of(config.name, args.experiment_dir)
    what = "--experiment-dir" if args.experiment_dir else "experiment folder"
    preflight.raise_problems(
        _option_problems(args)
        + preflight.check_experiment(config)
        + preflight.check_writable_folder(exp.root, what)
    )
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


def _option_problems(args: argparse.Namespace) -> list[str]:
    """The serve options' problems: limits below 1, an empty name, a cron string that is not
    one (found before anything is registered with the API)."""
    problems = [
        f"--{flag} must be >= 1, got {value}"
        for flag, value in (("limit", args.limit), ("train-limit", args.train_limit))
        if value is not None and value < 1
    ]
    if args.name is not None and not args.name.strip():
        problems.append("--name must not be empty")
    if not args.no_schedule:
        from prefect.client.schemas.schedules import CronSchedule
        from pydantic import ValidationError

        try:
            CronSchedule(cron=args.cron)
        except ValidationError:
            problems.append(
                f"--cron {args.cron!r} is not a cron schedule (five fields: minute hour "
                f"day-of-month month day-of-week, e.g. {DEFAULT_CRON!r})"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cli.serve``: the same as ``mixopt serve``."""
    parser = argparse.ArgumentParser(prog="python -m cli.serve", description=__doc__)
    add_serve_arguments(parser)
    add_debug_option(parser)
    return run_command(cmd_serve, parser.parse_args(argv), "mixopt serve")


if __name__ == "__main__":
    sys.exit(main())
