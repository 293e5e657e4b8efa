"""``mixopt serve``: serve the optimize_mixture and target_run deployments (see flows/deploy.py)."""

from __future__ import annotations

import argparse

#: Default re-optimization schedule: weekly, at night, when machines are idle.
DEFAULT_CRON = "0 3 * * 1"

#: Tag of every proxy and target training task (tasks/proxy.py); a concurrency limit on it
#: bounds how many train at once across all flow runs (e.g. one per GPU).
TRAIN_TAG = "proxy"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command to the ``mixopt`` parser (Prefect's deployment code is imported
    only when the command runs)."""
    text = "serve the deployments (cron re-optimization, target runs) to a Prefect server"
    parser = subparsers.add_parser("serve", help=text, description=text)
    add_serve_arguments(parser)
    parser.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    from flows.deploy import cmd_serve

    return cmd_serve(args)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``mixopt serve`` (shared by the CLI and ``python -m flows.deploy``)."""
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
