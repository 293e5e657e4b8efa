"""Flow runs left Running by a process that died are marked Crashed at the next start.

A process killed with SIGKILL (or by the out-of-memory killer, or a power cut) cannot tell the
Prefect API that its flow runs ended, and the CLI's temporary server runs no service that would
notice: the runs stayed Running in the database for good. So every mixopt flow records which
process runs it, and each mixopt command that starts flows first looks for Running flow runs
whose process is gone.

- ``record_flow_process`` is an ``on_running`` hook of every mixopt flow. It writes
  ``<host>:<pid>`` into the flow run's ``infrastructure_pid``, the field (and the format) Prefect's
  process workers use for the process of a flow run; a value a worker already set is left as it
  is.
- ``mark_crashed_flow_runs`` sets every Running flow run whose recorded process on this host is
  dead to Crashed, with a message naming the process, and its task runs still Running with it.
  A pid now held by a process started after the flow run (a reused pid) counts as dead. Runs of
  other hosts, and runs without a recorded process, are left alone: nothing here can tell
  whether they still run.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any
from uuid import UUID

from mixtures.processes import pid_alive, process_started_at

#: A process that started this many seconds after the flow run it is recorded for is another
#: process that reuses the pid: the flow run's own process started before the run. The margin
#: covers the boot-time rounding in ``process_started_at``.
START_SLACK_SECONDS = 2.0
#: Flow runs read per request (the API's default page size).
PAGE = 200


def process_label() -> str:
    """``<host>:<pid>`` of this process, as ``infrastructure_pid`` holds it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def record_flow_process(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_running`` hook: record this process as the flow run's ``infrastructure_pid``,
    unless a worker recorded the run's process already."""
    if flow_run.infrastructure_pid:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, infrastructure_pid=process_label())


def owner_is_dead(infrastructure_pid: str | None, started: float | None, *, host: str) -> bool:
    """Whether the process recorded as ``<host>:<pid>`` for a flow run that started at
    ``started`` (Unix time) has died: only for processes of ``host`` (this one); False when
    nothing is recorded, the record is not ``<host>:<pid>``, or the host is another."""
    if not infrastructure_pid:
        return False
    owner_host, sep, pid_text = infrastructure_pid.rpartition(":")
    if not sep or owner_host != host or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if not pid_alive(pid):
        return True
    begun = process_started_at(pid)
    return started is not None and begun is not None and begun > started + START_SLACK_SECONDS


def mark_crashed_flow_runs(say: Callable[[str], None] | None = None) -> list[UUID]:
    """Set each Running flow run whose process (``record_flow_process``) is dead to Crashed,
    and the task runs still Running in it; returns the flow run ids. Talks to the API Prefect's
    settings point at now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    host = socket.gethostname()
    running = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING]))
    )
    crashed: list[UUID] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_flow_runs(flow_run_filter=running, limit=PAGE, offset=offset)
            before = len(crashed)
            for run in page:
                started = run.start_time.timestamp() if run.start_time else None
                if owner_is_dead(run.infrastructure_pid, started, host=host):
                    message = (
                        f"its process ({run.infrastructure_pid}) ended without reporting an "
                        "end state (killed); marked Crashed by the next mixopt command"
                    )
                    client.set_flow_run_state(run.id, Crashed(message=message), force=True)
                    crashed.append(run.id)
                    if say is not None:
                        say(f"flow run {run.name!r} ({run.id}) was left Running: {message}")
            if len(page) < PAGE:
                break
            offset += len(page) - (len(crashed) - before)  # those crashed left the Running set
        if crashed:
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=crashed)),
                task_run_filter=TaskRunFilter(
                    state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING]))
                ),
            )
            for task_run in tasks:
                client.set_task_run_state(
                    task_run.id,
                    Crashed(message="its flow run's process ended without reporting"),
                    force=True,
                )
    return crashed


def report_to_stderr(message: str) -> None:
    print(f"mixopt: {message}", file=sys.stderr)
