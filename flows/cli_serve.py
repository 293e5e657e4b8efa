"""``mixopt serve``: serve the optimize_mixture and target_run deployments (see flows/deploy.py)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command to the ``mixopt`` parser."""
    from flows.deploy import add_serve_arguments, cmd_serve

    text = "serve the deployments (cron re-optimization, target runs) to a Prefect server"
    parser = subparsers.add_parser("serve", help=text, description=text)
    add_serve_arguments(parser)
    parser.set_defaults(func=cmd_serve)
