"""The command line's one error path: mixopt's own errors (bad config, bad input) print one line
naming the problem and exit 2; an operating-system error (a folder that cannot be written, a
missing file) prints one line and exits 1. No traceback for either."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from mixtures.errors import MixoptError

EXIT_BAD_INPUT = 2
EXIT_OS_ERROR = 1


def run_command(
    command: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, prog: str
) -> int:
    """``command(args)``, with errors reported as ``<prog>: error: ...`` on stderr."""
    try:
        return int(command(args) or 0)
    except MixoptError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_OS_ERROR
