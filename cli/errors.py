"""The command line's one error path: mixopt's own errors (bad config, bad input) print a few lines
naming the problem and exit 2; an operating-system error met while working (a full disk, a file
removed meanwhile) prints one line and exits 1; any other exception is a bug in mixopt and says
so. No traceback for any of them unless ``--debug`` asks for it.

Errors raised inside a flow reach the user the same way: Prefect logs a failed task's and flow's
traceback to the console before the exception reaches the command, so while a flow runs
:func:`flow_errors_once` keeps the console records that only repeat a mixopt error off the
terminal (the API's log handler, and so the UI, still gets them)."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mixtures.errors import MixoptError

EXIT_BAD_INPUT = 2
EXIT_OS_ERROR = 1
#: A bug in mixopt: an exception that is neither mixopt's own nor the operating system's.
EXIT_INTERNAL = 1
#: Interrupted with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Operating-system errors that only a path the user typed causes: bad input, not a failure.
INPUT_ERRNOS = frozenset({errno.ENAMETOOLONG})


def run_command(
    command: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, prog: str
) -> int:
    """``command(args)``, with errors reported as ``<prog>: error: ...`` on stderr; with
    ``args.debug`` the traceback is printed above that line."""
    debug = bool(getattr(args, "debug", False))
    try:
        return int(command(args) or 0)
    except MixoptError as err:
        return _report(prog, str(err), EXIT_BAD_INPUT, debug=debug)
    except OSError as err:
        code = EXIT_BAD_INPUT if err.errno in INPUT_ERRNOS else EXIT_OS_ERROR
        return _report(prog, str(err), code, debug=debug)
    except KeyboardInterrupt:
        return _report(prog, "interrupted", EXIT_INTERRUPTED, debug=debug)
    except Exception as err:
        return _report(
            prog,
            f"unexpected {type(err).__name__}: {err}\n(a bug in mixopt: rerun with --debug for "
            "the traceback, and report it)",
            EXIT_INTERNAL,
            debug=debug,
        )


def _report(prog: str, message: str, code: int, *, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    """``--debug`` on ``parser`` and on every subcommand's parser below it, so that it can be
    given before or after the subcommand's name."""
    _add_debug(parser, default=False)


def _add_debug(parser: argparse.ArgumentParser, *, default: object) -> None:
    if "--debug" not in parser._option_string_actions:
        parser.add_argument(
            "--debug",
            action="store_true",
            default=default,
            help="on an error, print its traceback too (and Prefect's full log of a failed flow)",
        )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                # SUPPRESS: a subcommand without --debug leaves the main parser's value alone
                _add_debug(sub, default=argparse.SUPPRESS)


class _RepeatsOfInputErrors(logging.Filter):
    """Drops the console records of a failed task or flow that repeat a mixopt error: the ones
    carrying it (Prefect logs them with their traceback), then the ``Finished in state
    Failed(...)`` lines naming its type. Other records, other errors' tracebacks included, pass."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        carried = [record.exc_info[1]] if record.exc_info else []
        args = record.args if isinstance(record.args, tuple) else ()
        errors = [e for e in [*carried, *args] if isinstance(e, MixoptError)]
        if errors:
            self.seen.update(type(e).__name__ for e in errors)
            return False
        if not record.name.startswith("prefect."):
            return True
        message = record.getMessage()
        return not (
            message.startswith("Finished in state")
            and any(f"{name}: " in message for name in self.seen)
        )


@contextmanager
def flow_errors_once(*, debug: bool) -> Iterator[None]:
    """Around a flow call: a mixopt error raised inside the flow reaches the terminal once, as
    the command's own ``error:`` line, not also as Prefect's logged tracebacks (``debug``: as
    Prefect logs it). Prefect must be imported already (its logging is set up on import)."""
    if debug:
        yield
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    quiet = _RepeatsOfInputErrors()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
