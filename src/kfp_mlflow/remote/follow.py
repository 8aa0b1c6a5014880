"""Follow a KFP run until it ends, surviving dropped connections.

Polls ``GET /apis/v2beta1/runs/{id}``. A poll that fails for a transient reason (nothing
answered, 502/503/504) is retried with exponential backoff; the follow only gives up after
``give_up_after`` seconds without a single answer. The run keeps going on the cluster either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kfp_mlflow.core.exceptions import KfpApiError, PipelineRunError
from kfp_mlflow.core.settings import Settings
from kfp_mlflow.remote.connection import KfpConnection, KfpSession
from kfp_mlflow.remote.errors import KfpUnreachableError, is_transient, kfp_api_errors
from kfp_mlflow.remote.links import kfp_run_url
from kfp_mlflow.remote.submit import session_for

SUCCESS_STATES = frozenset({"SUCCEEDED", "SKIPPED"})
FAILURE_STATES = frozenset({"FAILED", "CANCELED"})
TERMINAL_STATES = SUCCESS_STATES | FAILURE_STATES


@dataclass(frozen=True)
class TaskStatus:
    name: str
    state: str
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class RunStatus:
    """One observation of a run."""

    run_id: str
    run_name: str
    state: str
    url: str
    tasks: tuple[TaskStatus, ...] = ()
    error: str | None = None
    mlflow_url: str | None = None  # from plugins_output.mlflow when KFP's integration is on

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.state in SUCCESS_STATES

    @property
    def failed_tasks(self) -> tuple[TaskStatus, ...]:
        return tuple(t for t in self.tasks if t.state in FAILURE_STATES)


@dataclass
class Backoff:
    """Exponential backoff between failed polls: initial, ×factor, capped."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    _next: float = field(default=0.0, init=False)

    def reset(self) -> None:
        self._next = 0.0

    def next_delay(self) -> float:
        self._next = self.initial if not self._next else min(self._next * self.factor, self.cap)
        return self._next


def run_status(session: KfpSession, run: object) -> RunStatus:
    """A :class:`RunStatus` from a ``V2beta1Run``."""
    details = getattr(run, "run_details", None)
    tasks: dict[str, TaskStatus] = {}
    for task in getattr(details, "task_details", None) or []:
        name = task.display_name or task.task_id
        if not name or name == getattr(run, "display_name", None):
            continue  # the root DAG repeats the run itself
        tasks[name] = TaskStatus(
            name=name,
            state=str(task.state or "PENDING"),
            start_time=task.start_time,
            end_time=task.end_time,
            error=getattr(task.error, "message", None) or None,
        )
    plugin = (getattr(run, "plugins_output", None) or {}).get("mlflow")
    entry = (getattr(plugin, "entries", None) or {}).get("run_url")
    run_id = str(getattr(run, "run_id", ""))
    return RunStatus(
        run_id=run_id,
        run_name=str(getattr(run, "display_name", "") or run_id),
        state=str(getattr(run, "state", None) or "PENDING"),
        url=kfp_run_url(session.ui_url, run_id),
        tasks=tuple(tasks.values()),
        error=getattr(getattr(run, "error", None), "message", None) or None,
        mlflow_url=getattr(entry, "value", None) if entry is not None else None,
    )


def get_run_status(session: KfpSession, run_id: str) -> RunStatus:
    with kfp_api_errors(session.host, f"get KFP run {run_id}"):
        run = session.client.runs.run_service_get_run(run_id, _request_timeout=session.timeout)
    return run_status(session, run)


def follow_run(
    run_id: str,
    connection: KfpConnection | KfpSession | None = None,
    *,
    on_update: Callable[[RunStatus], None] | None = None,
    on_retry: Callable[[KfpApiError, float], None] | None = None,
    poll_interval: float = 5.0,
    backoff: Backoff | None = None,
    give_up_after: float = 600.0,
    timeout: float | None = None,
    raise_on_failure: bool = True,
    settings: Settings | None = None,
) -> RunStatus:
    """Poll run ``run_id`` until it ends; ``on_update`` sees every observation.

    Raises :class:`~kfp_mlflow.core.exceptions.PipelineRunError` naming the failed tasks when the
    run
    fails (unless ``raise_on_failure`` is False), and :class:`KfpUnreachableError` after
    ``give_up_after`` seconds with no answer. 401/403/404 are not retried: waiting won't fix them.
    """
    session = session_for(connection, settings)
    backoff = backoff or Backoff()
    started = time.monotonic()
    last_answer = started
    while True:
        try:
            status = get_run_status(session, run_id)
        except KfpApiError as error:
            cause = error.__cause__ or error
            if not is_transient(cause):
                raise
            silent_for = time.monotonic() - last_answer
            if silent_for >= give_up_after:
                raise KfpUnreachableError(
                    f"lost the KFP API for {silent_for:.0f} s while following run {run_id}; "
                    "the run goes on on the cluster",
                    hint=f"follow it again later or open {kfp_run_url(session.ui_url, run_id)}",
                ) from error
            delay = min(backoff.next_delay(), max(give_up_after - silent_for, 0.0))
            if on_retry is not None:
                on_retry(error, delay)
            time.sleep(delay)
            continue
        last_answer = time.monotonic()
        backoff.reset()
        if on_update is not None:
            on_update(status)
        if status.done:
            if raise_on_failure and not status.succeeded:
                raise run_failed(status)
            return status
        if timeout is not None and time.monotonic() - started >= timeout:
            return status
        time.sleep(poll_interval)


def run_failed(status: RunStatus) -> PipelineRunError:
    failed = status.failed_tasks
    names = ", ".join(t.name for t in failed) or "no task reported"
    first_error = next((t.error for t in failed if t.error), None) or status.error
    message = f"KFP run {status.run_name} {status.state.lower()}: failed task(s): {names}"
    if first_error:
        message += f" ({first_error.splitlines()[0][:200]})"
    return PipelineRunError(message, hint=f"see {status.url}")


__all__ = [
    "Backoff",
    "RunStatus",
    "TaskStatus",
    "follow_run",
    "get_run_status",
    "run_failed",
    "run_status",
]
