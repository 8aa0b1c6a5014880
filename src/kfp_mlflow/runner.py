"""Run the training pipeline on this machine with kfp.local, tracked by a real MLflow server.

kfp.local runs each task as a subprocess of the current interpreter (``use_venv=False``): the
same component definitions as on the cluster, no image and no network. Its verbose log goes to a
file; the console gets one line per task.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from kfp_mlflow.exceptions import InterruptedRunError, PipelineRunError, TrackingError
from kfp_mlflow.local_server import ensure_server, is_healthy
from kfp_mlflow.settings import ENV_PREFIX, Settings, get_settings
from kfp_mlflow.tracking import kill_open_runs

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")


@dataclass
class TaskEvent:
    task: str
    status: str  # RUNNING, SUCCESS, FAILURE
    seconds: float = 0.0


@dataclass
class LocalRun:
    """What a local run produced."""

    succeeded: bool
    tracking_uri: str
    run_dir: Path
    log_path: Path
    decision: dict[str, Any] | None
    events: list[TaskEvent] = field(default_factory=list)
    seconds: float = 0.0


class _ProgressStream(io.TextIOBase):
    """Writes kfp.local's output to a log file and reports task starts and ends."""

    def __init__(self, log: io.TextIOBase, on_event: Callable[[TaskEvent], None]) -> None:
        self._log = log
        self._on_event = on_event
        self._buffer = ""
        # Iterations of a ParallelFor share a task name and run concurrently: FIFO per name.
        self._started: dict[str, list[float]] = {}
        self.events: list[TaskEvent] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._log.write(text)
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._scan(_ANSI.sub("", line))
        return len(text)

    def _scan(self, line: str) -> None:
        if match := _STARTED.search(line):
            self._started.setdefault(match.group(1), []).append(time.perf_counter())
            self._emit(TaskEvent(match.group(1), "RUNNING"))
        elif match := _FINISHED.search(line):
            name = match.group(1)
            starts = self._started.get(name) or [time.perf_counter()]
            elapsed = time.perf_counter() - starts.pop(0)
            self._emit(TaskEvent(name, match.group(2), elapsed))

    def _emit(self, event: TaskEvent) -> None:
        self.events.append(event)
        self._on_event(event)

    def flush(self) -> None:
        self._log.flush()


def git_commit(directory: Path) -> str | None:
    """The commit checked out in ``directory`` (with ``-dirty`` if modified), if it is a repo."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def resolve_tracking_uri(settings: Settings) -> str:
    """The configured server (which must answer), or a local one started for this work dir."""
    if settings.tracking_uri:
        uri = settings.tracking_uri
        if uri.startswith(("http://", "https://")) and not is_healthy(uri, timeout=5.0):
            raise TrackingError(
                f"MLflow tracking server {uri} is unreachable",
                hint="start it, fix MLFLOW_TRACKING_URI, or unset it to use a local server",
            )
        return uri
    return ensure_server(settings.work_dir / "mlflow", settings.local_server_port)


def run_local(
    arguments: dict[str, Any],
    settings: Settings | None = None,
    on_event: Callable[[TaskEvent], None] = lambda event: None,
) -> LocalRun:
    """Run the training pipeline with kfp.local; ``arguments`` override parameter defaults."""
    from kfp import local

    from kfp_mlflow.pipelines.training import build_training_pipeline

    settings = settings or get_settings()
    started = time.perf_counter()
    tracking_uri = resolve_tracking_uri(settings)
    # Tasks are subprocesses: the environment is how their settings reach them.
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    os.environ[f"{ENV_PREFIX}RUNNER"] = "local"
    # kfp.local runs two tasks at once: one BLAS/OpenMP thread each keeps them off each other's
    # cores (a user's own setting wins).
    for threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(threads, "1")
    commit = settings.git_commit or git_commit(Path.cwd())
    if commit:
        os.environ[f"{ENV_PREFIX}GIT_COMMIT"] = commit
    get_settings.cache_clear()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = (settings.work_dir / "runs" / stamp).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "pipeline.log"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(run_dir),
        raise_on_error=False,
    )
    pipeline = build_training_pipeline(get_settings())
    console_stdout = sys.stdout

    def report(event: TaskEvent) -> None:
        with contextlib.redirect_stdout(console_stdout):
            on_event(event)

    with log_path.open("w") as log, warnings.catch_warnings():
        # kfp warns that the project image is not a Python image; locally that is the point.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        stream = _ProgressStream(log, report)  # type: ignore[arg-type]
        started_ms = int(time.time() * 1000)
        experiment = arguments.get("experiment_name") or settings.experiment_name
        try:
            with contextlib.redirect_stdout(stream), _stop_on_interrupt(experiment, started_ms):  # type: ignore[type-var]
                pipeline(**arguments)
        except KeyboardInterrupt:
            ended = kill_open_runs(experiment, started_ms, get_settings())
            raise InterruptedRunError(
                f"interrupted; {ended} MLflow run(s) still open were marked KILLED",
                hint=f"partial log: {log_path}",
            ) from None
    decision_files = sorted(run_dir.glob("*/register/decision"))
    decision = json.loads(decision_files[-1].read_text()) if decision_files else None
    failed = [e for e in stream.events if e.status == "FAILURE"]
    return LocalRun(
        succeeded=not failed and decision is not None,
        tracking_uri=tracking_uri,
        run_dir=run_dir,
        log_path=log_path,
        decision=decision,
        events=stream.events,
        seconds=time.perf_counter() - started,
    )


@contextlib.contextmanager
def _stop_on_interrupt(experiment: str, started_ms: int) -> Iterator[None]:
    """On Ctrl-C, mark this run's MLflow runs KILLED at once, then interrupt as usual.

    kfp.local answers a KeyboardInterrupt by draining its queue of tasks; with the parent run
    KILLED first, every task it still starts refuses to work (see tracking.task_run).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(Exception):
            kill_open_runs(experiment, started_ms, get_settings())
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def failure_message(run: LocalRun) -> PipelineRunError:
    """The error a failed run ends with: the failing step and the error it raised."""
    failed = [e.task for e in run.events if e.status == "FAILURE"]
    reason = _error_from_log(run.log_path) or "see the log"
    task = failed[0] if failed else "a task"
    return PipelineRunError(f"step {task} failed: {reason}", hint=f"full log: {run.log_path}")


def _error_from_log(log_path: Path) -> str | None:
    """The last exception line a task printed (our errors are one line by design)."""
    pattern = re.compile(
        r"kfp_mlflow\.exceptions\.(\w+): (.*)$|^\s*([\w.]+(?:Error|Exception)): (.*)$"
    )
    found = None
    for line in _ANSI.sub("", log_path.read_text(errors="replace")).splitlines():
        if match := pattern.search(line.strip()):
            found = match.group(2) or f"{match.group(3)}: {match.group(4)}"
            if match.group(1):
                break
    return found
