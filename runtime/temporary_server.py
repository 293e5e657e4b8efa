"""The process of the CLI's temporary Prefect API server (see ``runtime.server.TemporaryAPI``).

``python -m runtime.temporary_server PORT`` serves Prefect's API app
(``prefect.server.api.server:create_app``, what Prefect's own temporary server runs) on
127.0.0.1:PORT until SIGINT or SIGTERM, then shuts it down gracefully: services stop and flush
what they hold (task-run states, events) to the database.

One thing differs from ``python -m uvicorn``: after that shutdown, the heap is frozen
(``gc.freeze``) before the interpreter exits. The server's heap is large (FastAPI, pydantic and
SQLAlchemy models) and the final garbage collection at exit takes a noticeable part of a
second, while the command that started the server waits for its exit. Nothing is left to write
by then, and atexit handlers still run.
"""

from __future__ import annotations

import gc
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or not args[0].isdigit():
        print("usage: python -m runtime.temporary_server PORT [LOG_LEVEL]", file=sys.stderr)
        return 2
    # Stopped before it serves (the command failed early): end quietly, no KeyboardInterrupt
    # traceback. uvicorn installs its own handlers (graceful shutdown) once it serves.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    import uvicorn

    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(args[0]),
        log_level=args[1] if len(args) > 1 else "error",
        lifespan="on",
    )
    gc.freeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
