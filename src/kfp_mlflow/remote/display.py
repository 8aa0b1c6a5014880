"""Live progress of a followed run: a rich table per task on a terminal, one line per change
elsewhere (CI logs, pipes), so a log reads as a history instead of repainted frames."""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from kfp_mlflow.remote.follow import RunStatus, TaskStatus

_STYLE = {
    "SUCCEEDED": "green",
    "SKIPPED": "dim",
    "FAILED": "bold red",
    "CANCELED": "red",
    "CANCELING": "yellow",
    "RUNNING": "cyan",
    "PENDING": "dim",
}


def _elapsed(task: TaskStatus) -> str:
    if task.start_time is None:
        return ""
    end = task.end_time or datetime.now(UTC)
    start = task.start_time if task.start_time.tzinfo else task.start_time.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return f"{max((end - start).total_seconds(), 0):.0f}s"


class RunProgress:
    """Context manager; feed it every :class:`RunStatus` through :meth:`update`."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._live: Live | None = None
        self._seen: dict[str, str] = {}

    def __enter__(self) -> RunProgress:
        if self.console.is_terminal:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)

    def table(self, status: RunStatus) -> Table:
        style = _STYLE.get(status.state, "")
        table = Table(title=f"{status.run_name}: [{style}]{status.state}[/]", title_justify="left")
        table.add_column("task")
        table.add_column("state")
        table.add_column("time", justify="right")
        for task in status.tasks:
            state_style = _STYLE.get(task.state, "")
            table.add_row(task.name, f"[{state_style}]{task.state}[/]", _elapsed(task))
        return table

    def update(self, status: RunStatus) -> None:
        if self._live is not None:
            self._live.update(self.table(status))
            return
        for key, state in [("run", status.state), *((t.name, t.state) for t in status.tasks)]:
            if self._seen.get(key) != state:
                self._seen[key] = state
                label = f"run {status.run_name}" if key == "run" else f"task {key}"
                self.console.print(f"{label}: {state}", highlight=False)

    def retrying(self, error: Any, delay: float) -> None:
        self.console.print(
            f"[yellow]connection lost ({error.message}); retrying in {delay:.1f}s[/]",
            highlight=False,
        )
