"""Run any pipeline on this machine with kfp.local, tracked by a real MLflow server.

Three processes share a local run (see :mod:`kfp_mlflow.local`): this one, which checks the
arguments, starts the server, and then only watches; a *driver* in which kfp.local executes the
compiled pipeline; and a *supervisor* that forks every task warm, enforces its deadline and
records how it really ended. Outcomes come from structured data only: every kfp-mlflow task
writes a status record (:mod:`kfp_mlflow.runtime.task_records`) and the supervisor writes the exit
facts of every task process; kfp.local's own log goes to a file that nothing parses.

The caller's process is left as it was: kfp.local's patches of ``print``, logging and the
environment happen in the driver; signal handlers are installed only while the run lasts, in
the main thread; the environment of the tasks is built (:func:`task_environment`), never
written into ``os.environ``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal, TypeVar

from kfp_mlflow.core.contracts import CONTRACT_KEY, Contract, Decision
from kfp_mlflow.core.exceptions import (
    ConfigError,
    InterruptedRunError,
    KfpMlflowError,
    PipelineStoppedError,
    StepFailedError,
    StepTimedOutError,
    TrackingError,
)
from kfp_mlflow.core.net import is_healthy
from kfp_mlflow.core.settings import (
    ENV_PREFIX,
    Settings,
    child_environment,
    get_settings,
    task_environment,
)
from kfp_mlflow.local.server import ensure_server, has_store
from kfp_mlflow.runtime.supervisor import GRACE_S, SOCKET_ENV, ExitFacts
from kfp_mlflow.runtime.task_records import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    Stop,
    TaskRecord,
    read_records,
)
from kfp_mlflow.tracking.ledger import forget, reconcile, remember

_POLL_SECONDS = 0.2
# After the tasks were told to stop, how long kfp.local may take to notice before its process
# group is ended for it.
_DRIVER_GRACE_S = GRACE_S + 10.0
# Docker runs have no supervisor: a container's task past its deadline by this much is ended
# by the runner (the task's own alarm normally ends it first).
_DOCKER_OVERDUE_S = 15.0
# The step of kfp_mlflow.exit_handler()'s task.
_FINALIZE = "finalize"
C = TypeVar("C", bound=Contract)


@dataclass
class TaskEvent:
    task: str
    status: str  # RUNNING, SUCCEEDED, FAILED
    seconds: float = 0.0


@dataclass
class LocalRun:
    """What a local run produced."""

    succeeded: bool
    tracking_uri: str
    run_dir: Path
    log_path: Path
    tasks: list[TaskRecord]
    decision: Decision | None
    error: KfpMlflowError | None = None
    seconds: float = 0.0
    kfp_run_ids: set[str] = field(default_factory=set)

    def raise_for_failure(self) -> None:
        if self.error is not None:
            raise self.error

    def record(self, contract: type[C]) -> C | None:
        """The last record of type ``contract`` a task output (e.g. ``Reproduction``)."""
        return _record(self.tasks, contract)


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


def resolve_tracking_uri(settings: Settings, *, create: bool = True) -> str:
    """The configured server (which must answer), or the local one of this work dir, started
    if need be. ``create=False`` (commands that only read or move what runs wrote) starts a
    local server only over an existing store: a command run in the wrong directory says so
    instead of leaving a new, empty server behind."""
    if settings.tracking_uri:
        uri = settings.tracking_uri
        if uri.startswith(("http://", "https://")) and not is_healthy(uri, timeout=5.0):
            raise TrackingError(
                f"MLflow tracking server {uri} is unreachable",
                hint="start it, fix MLFLOW_TRACKING_URI, or unset it to use a local server",
            )
        return uri
    store = settings.work_dir / "mlflow"
    if not create and not has_store(store):
        raise TrackingError(
            f"no MLflow store here: MLFLOW_TRACKING_URI is unset and {store} holds no local "
            "server's data",
            hint="run the command where you ran `kfp-mlflow run`, or set MLFLOW_TRACKING_URI",
        )
    return ensure_server(store, settings.local_server_port)


def run_local(
    pipeline: Any = None,
    arguments: dict[str, Any] | None = None,
    settings: Settings | None = None,
    on_event: Callable[[TaskEvent], None] = lambda event: None,
    runner: Literal["subprocess", "docker"] = "subprocess",
) -> LocalRun:
    """Run ``pipeline`` (default: the training pipeline) with kfp.local.

    ``arguments`` override parameter defaults; they are checked before anything starts (see
    :mod:`kfp_mlflow.steps.validation`). Returns what happened; ``LocalRun.error`` holds the failing
    step's own error (``raise_for_failure()`` raises it). ``runner="docker"`` runs every task in
    the component image (``settings.image``, built by ``.ci/build-image``) with kfp.local's
    DockerRunner, on the host network so tasks reach the tracking server; tracking, artifacts
    and decision are the same.

    The first failing task stops the others at once; a task past its deadline
    (``settings.task_timeout`` unless its component sets one) is ended. SIGINT and SIGTERM
    (in the main thread) end every task, mark the run's MLflow runs KILLED and raise
    :class:`InterruptedRunError`. Safe to call repeatedly in one process (a notebook): the
    process's globals are left as they were.
    """
    settings = settings or get_settings()
    if runner not in ("subprocess", "docker"):
        raise ConfigError(f"runner: {runner!r} is not subprocess or docker")
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = (settings.work_dir / "runs" / stamp).resolve()
    processes = _Processes(run_dir, settings, docker=runner == "docker")
    try:
        # First, so that its imports overlap the checks and the server start below; it starts
        # no task until the driver asks.
        if runner == "subprocess":
            processes.start_supervisor()
        processes.start_driver()
        pipeline, arguments, task_settings = _prepare(pipeline, arguments, settings, processes)
        watch = _Watch(processes.status_dir, on_event, processes, runner)

        def opened(kfp_run_id: str) -> None:
            remember(
                settings,
                kfp_run_id,
                str(task_settings.tracking_uri),
                settings.experiment_name,
                pids=processes.pids(),
            )

        watch.on_new_run = opened
        interrupted: int | None = None
        with _signals_as_flags() as caught:
            processes.run_driver(
                task_environment(
                    task_settings,
                    tracking_uri=str(task_settings.tracking_uri),
                    runner="local" if runner == "subprocess" else "docker",
                    status_dir=processes.status_dir,
                )
            )
            interrupted = watch.until_done(caught)
    finally:
        processes.finish()
    watch.scan()  # the final states
    return _conclude(watch, processes, interrupted, settings, task_settings, started)


def _prepare(
    pipeline: Any, arguments: dict[str, Any] | None, settings: Settings, processes: _Processes
) -> tuple[Any, dict[str, Any], Settings]:
    """Everything knowable before the first task: arguments, graph, image, server; then the
    compiled spec the driver runs. Returns the settings the tasks get."""
    from kfp_mlflow.dsl.ir_checks import check_pipeline
    from kfp_mlflow.dsl.pipeline_loading import coerce_arguments, load_pipeline, merged_arguments
    from kfp_mlflow.steps.validation import check_arguments

    pipeline = pipeline if pipeline is not None else load_pipeline(None, settings)
    arguments = coerce_arguments(pipeline, dict(arguments or {}))
    check_arguments(merged_arguments(pipeline, arguments))
    check_pipeline(pipeline)  # the graph a cluster would reject, rejected here too
    updates: dict[str, Any] = {"status_dir": processes.status_dir}
    if processes.docker:
        processes.docker_options = docker_runner_options(settings)
        updates["image_digest"] = processes.docker_options.pop("image_id")
    elif not settings.git_commit:
        updates["git_commit"] = git_commit(Path.cwd())
    updates["tracking_uri"] = resolve_tracking_uri(settings)
    # Runs an earlier, dead local run left open against this server are closed first.
    reconcile(settings, updates["tracking_uri"])
    _write_spec(pipeline, arguments, processes.run_dir)
    return pipeline, arguments, settings.model_copy(update=updates)


def _conclude(
    watch: _Watch,
    processes: _Processes,
    interrupted: int | None,
    settings: Settings,
    task_settings: Settings,
    started: float,
) -> LocalRun:
    """Close the run's MLflow runs with the verdict and say what happened."""
    status_dir, tracking_uri = processes.status_dir, str(task_settings.tracking_uri)
    records = read_records(status_dir)
    kfp_run_ids = {record.kfp_run_id for record in records}
    if interrupted is not None:
        killed = _end_killed(kfp_run_ids, task_settings)
        for kfp_run_id in kfp_run_ids:
            forget(settings, kfp_run_id)
        raise InterruptedRunError(
            f"interrupted by {signal.Signals(interrupted).name}; every task ended, {killed} "
            "MLflow run(s) of this pipeline run marked KILLED",
            hint=f"partial log: {processes.log_path}",
            exit_code=128 + interrupted,
        )
    outcome = None
    if not watch.succeeded:
        facts = ExitFacts.read_all(status_dir)
        outcome = _failure(records, facts, processes.log_path, watch.first_failure)
    # With the server down, closing would only wait out the request bounds again: the
    # ledger keeps the runs for the next command (or `kfp-mlflow runs reconcile`).
    # A pipeline whose exit handler ran has its runs closed already (its finalize task did it).
    closed = {r.kfp_run_id for r in records if r.step == _FINALIZE and r.state == SUCCEEDED}
    if not tracking_uri.startswith("http") or is_healthy(tracking_uri, timeout=3.0):
        _close_parents(kfp_run_ids - closed, outcome, task_settings)
        for kfp_run_id in kfp_run_ids:
            forget(settings, kfp_run_id)
    return LocalRun(
        succeeded=outcome is None,
        tracking_uri=tracking_uri,
        run_dir=processes.run_dir,
        log_path=processes.log_path,
        tasks=records,
        decision=_decision(records),
        error=outcome,
        seconds=time.perf_counter() - started,
        kfp_run_ids=kfp_run_ids,
    )


def _write_spec(pipeline: Any, arguments: dict[str, Any], run_dir: Path) -> None:
    """The pipeline as the driver runs it: compiled IR (what a cluster runs) and arguments."""
    from kfp import compiler

    compiler.Compiler().compile(pipeline, str(run_dir / "pipeline.yaml"))
    (run_dir / "arguments.json").write_text(json.dumps(arguments))


# The component image's user (components/Dockerfile: USER 10001, group 0).
IMAGE_UID = 10001


def docker_runner_options(settings: Settings) -> dict[str, Any]:
    """kfp.local DockerRunner arguments for ``settings.image``, which must be in the local
    engine (checked now, before anything starts), plus its ``image_id``."""
    try:
        import docker

        client = docker.from_env()
        image = client.images.get(settings.image)
    except Exception as error:  # docker-py raises DockerException, ImageNotFound, OSError...
        raise ConfigError(
            f"--runner docker: image {settings.image} is not in the local Docker engine "
            f"({type(error).__name__})",
            hint="build it with .ci/build-image (or set KFP_MLFLOW_IMAGE to one you have)",
        ) from None
    options: dict[str, Any] = {"network_mode": "host", "image_id": str(image.id)}
    if os.getuid() != 0:
        # The pipeline root is mounted at its own path: as anyone but root, tasks run as you.
        options["user"] = f"{os.getuid()}:0"
    return options


class _Processes:
    """The driver and (subprocess runs) the supervisor of one local run, tied to this process
    by a lifeline pipe whose write end only this process holds."""

    def __init__(self, run_dir: Path, settings: Settings, *, docker: bool) -> None:
        self.run_dir = run_dir
        self.status_dir = run_dir / "tasks"
        self.status_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.docker = docker
        self.docker_options: dict[str, Any] = {}
        self.log_path = run_dir / "pipeline.log"
        self.driver: subprocess.Popen[bytes] | None = None
        self.supervisor: subprocess.Popen[bytes] | None = None
        self._lifeline_read, self._lifeline = os.pipe()
        self._socket_dir: str | None = None
        self.socket_path = ""
        self.started = False  # the driver was given a pipeline to run

    def pids(self) -> tuple[int, ...]:
        return (os.getpid(), *(p.pid for p in (self.driver, self.supervisor) if p is not None))

    def start_supervisor(self) -> None:
        path = self.run_dir / "tasks.sock"
        if len(str(path)) > 100:  # the limit of a Unix socket's path
            self._socket_dir = tempfile.mkdtemp(prefix="kfp-mlflow-")
            path = Path(self._socket_dir) / "tasks.sock"
        self.socket_path = str(path)
        command = [
            sys.executable, "-m", "kfp_mlflow.runtime.supervisor",
            "--socket", self.socket_path,
            "--status-dir", str(self.status_dir),
            "--lifeline", str(self._lifeline_read),
            "--default-timeout", f"{self.settings.task_timeout:g}",
        ]  # fmt: skip
        if not self.settings.warm_tasks:
            command.append("--cold")
        # Its own environment matters only for what it imports (thread counts, plotting
        # backend): each task gets its client's environment.
        env = child_environment(
            task_environment(
                self.settings, tracking_uri="", runner="local", status_dir=self.status_dir
            )
        )
        with (self.run_dir / "supervisor.log").open("wb") as log:
            self.supervisor = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                pass_fds=(self._lifeline_read,),
            )

    def start_driver(self) -> None:
        """Start the driver now: it imports kfp while the checks run, then waits for
        :meth:`run_driver`."""
        command = [
            sys.executable, "-m", "kfp_mlflow.runtime.driver",
            "--root", str(self.run_dir),
            "--lifeline", str(self._lifeline_read),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.driver = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                # The status directory marks every process of this run (as the tasks' does).
                env=child_environment({f"{ENV_PREFIX}STATUS_DIR": str(self.status_dir)}),
                start_new_session=True,
                pass_fds=(self._lifeline_read,),
            )

    def run_driver(self, task_env: dict[str, str]) -> None:
        """Hand the driver what to run: the compiled spec, the arguments, the tasks'
        environment (and, for Docker, the runner's options)."""
        assert self.driver is not None
        assert self.driver.stdin is not None
        env = dict(task_env)
        if self.supervisor is not None:
            env[SOCKET_ENV] = self.socket_path
        docker: dict[str, Any] | None = None
        if self.docker:
            docker = {**self.docker_options, "environment": dict(task_env)}
            if os.getuid() == 0:  # the image's non-root user writes into the pipeline root
                for folder in (self.run_dir, *self.run_dir.rglob("*")):
                    os.chown(folder, IMAGE_UID, 0)
        order = {
            "spec": str(self.run_dir / "pipeline.yaml"),
            "arguments": str(self.run_dir / "arguments.json"),
            "runner": "docker" if self.docker else "subprocess",
            "docker": docker,
            "env": env,
        }
        # Through a pipe, not a file: the environment holds credentials.
        self.driver.stdin.write(json.dumps(order).encode() + b"\n")
        self.driver.stdin.close()
        self.started = True

    def driver_done(self) -> bool:
        return self.driver is None or self.driver.poll() is not None

    def stop_tasks(self) -> None:
        """End every running task (SIGTERM, then SIGKILL after the grace period) and refuse
        new ones; kfp.local then finds each remaining task failed and stops."""
        if self.supervisor is not None and self.supervisor.poll() is None:
            from kfp_mlflow.runtime.supervisor import request_stop

            request_stop(self.socket_path)
        if self.docker:
            from kfp_mlflow.runtime.driver import kill_containers

            kill_containers(self.run_dir.name)

    def end_driver(self) -> None:
        if not self.driver_done():
            assert self.driver is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.driver.pid, signal.SIGKILL)

    def finish(self) -> None:
        """Make sure nothing of this run is left running, whatever happened (and nothing left
        on disk of a run that never started)."""
        if self.driver is not None and not self.started and self.driver.stdin is not None:
            self.driver.stdin.close()  # EOF: nothing to run, it exits
        if self.driver is not None and not self.driver_done():
            self.stop_tasks()
            try:
                self.driver.wait(timeout=_DRIVER_GRACE_S)
            except subprocess.TimeoutExpired:
                self.end_driver()
                self.driver.wait()
        if self.supervisor is not None and self.supervisor.poll() is None:
            self.supervisor.terminate()  # ends its tasks (if any), then itself
            try:
                self.supervisor.wait(timeout=GRACE_S + 5.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.supervisor.pid, signal.SIGKILL)
                self.supervisor.wait()
        for fd in (self._lifeline_read, self._lifeline):
            with contextlib.suppress(OSError):
                os.close(fd)
        import shutil

        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if not self.started:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            # ... and the folders made for it, if it was the first (bad input leaves nothing).
            for folder in (self.run_dir.parent, self.run_dir.parent.parent):
                with contextlib.suppress(OSError):
                    folder.rmdir()


class _Watch:
    """Polls the status directory: reports each task's start and end once, notices the first
    failure (a FAILED record, a task process that died without one, or — Docker — a task past
    its deadline) and stops the rest of the run at once."""

    def __init__(
        self,
        directory: Path,
        on_event: Callable[[TaskEvent], None],
        processes: _Processes,
        runner: str,
    ) -> None:
        self._directory = directory
        self._on_event = on_event
        self._processes = processes
        self._runner = runner
        self.on_new_run: Callable[[str], None] = lambda kfp_run_id: None
        self._runs: set[str] = set()
        self._seen: dict[str, str] = {}
        self.first_failure: str | None = None  # record id or "pid:N"
        self._stopped_at: float | None = None

    @property
    def succeeded(self) -> bool:
        return (
            self.first_failure is None
            and self._processes.driver is not None
            and (self._processes.driver.returncode == 0)
        )

    def until_done(self, caught: list[int]) -> int | None:
        """Watch until the driver ends; the signal that interrupted the run, if one did."""
        while not self._processes.driver_done():
            if caught:
                self._processes.stop_tasks()
                return caught[0]
            self.scan()
            if self._stopped_at is not None and (
                time.monotonic() - self._stopped_at > _DRIVER_GRACE_S
            ):
                self._processes.end_driver()
            time.sleep(_POLL_SECONDS)
        return caught[0] if caught else None

    def scan(self) -> None:
        records = read_records(self._directory)
        facts = ExitFacts.read_all(self._directory)
        by_pid = {record.pid: record for record in records}
        for record in records:
            if record.kfp_run_id not in self._runs:
                self._runs.add(record.kfp_run_id)
                self.on_new_run(record.kfp_run_id)
            fact = facts.get(record.pid)
            state = record.state
            if state == RUNNING and fact is not None:
                state = FAILED  # the process ended without finishing its record
            if state == FAILED and not _is_consequence(record, fact):
                self._fail(record.record_id, record.label or record.task, record.error)
            if self._runner == "docker" and _overdue(record):
                self._fail(record.record_id, record.label or record.task, None)
            if self._seen.get(record.record_id) == state:
                continue
            if state != RUNNING and record.record_id not in self._seen:
                self._emit(record, RUNNING, fact)
            self._seen[record.record_id] = state
            self._emit(record, state, fact)
        for pid, fact in facts.items():
            if pid not in by_pid and _failed(fact) and fact.stopped_by is None:
                self._fail(f"pid:{pid}", fact.task or f"task {pid}", None)

    def _fail(self, key: str, label: str, error: Any) -> None:
        if self.first_failure is not None:
            return
        self.first_failure = key
        code = error.exit_code if error is not None else 6
        # Tasks not started yet do no work; running ones are ended now.
        Stop(label, code).save(self._directory)
        self._processes.stop_tasks()
        self._stopped_at = time.monotonic()

    def _emit(self, record: TaskRecord, state: str, fact: ExitFacts | None) -> None:
        label = record.label or record.task
        seconds = 0.0
        if state != RUNNING:
            seconds = fact.seconds if fact is not None else record.seconds
        with contextlib.suppress(Exception):  # a broken printer must not stop the run
            self._on_event(TaskEvent(label, state, seconds))


def _overdue(record: TaskRecord) -> bool:
    """A task still RUNNING well past its deadline (a Docker task whose alarm did not end it)."""
    return bool(
        record.state == RUNNING
        and record.timeout
        and time.time() - record.started > record.timeout + _DOCKER_OVERDUE_S
    )


def _failed(fact: ExitFacts) -> bool:
    return fact.signal is not None or fact.exit_code != 0


def _is_consequence(record: TaskRecord, fact: ExitFacts | None) -> bool:
    """Whether a failed task failed only because the run was already stopping."""
    if fact is not None and fact.stopped_by in ("stop", "runner", "terminate"):
        return True
    return record.error is not None and record.error.error_class == PipelineStoppedError.__name__


@contextlib.contextmanager
def _signals_as_flags() -> Iterator[list[int]]:
    """While the block runs (main thread only), SIGINT and SIGTERM are noted, not raised: the
    watch loop then stops the run in order. The previous handlers come back afterwards."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def note(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _failure(
    records: list[TaskRecord],
    facts: dict[int, ExitFacts],
    log_path: Path,
    first: str | None,
) -> KfpMlflowError:
    """The error the run ends with: the first task that failed for a reason of its own, with
    what really ended it (its own error, its deadline, a signal, the OOM killer)."""
    hint = f"full log: {log_path}"
    by_id = {record.record_id: record for record in records}
    if first is not None and first.startswith("pid:"):
        orphan = facts[int(first.removeprefix("pid:"))]
        return _died(orphan.task or f"task {orphan.pid}", orphan, orphan.seconds, hint)
    record = by_id.get(first or "")
    if record is None:
        failed = sorted(
            (
                r
                for r in records
                if r.state != SUCCEEDED and not _is_consequence(r, facts.get(r.pid))
            ),
            key=lambda r: r.ended or time.time(),
        )
        record = failed[0] if failed else None
    if record is None:
        # A task that is not a kfp-mlflow component failed; kfp.local names it in its log.
        return StepFailedError("a task failed (not a kfp-mlflow component)", hint=hint)
    label = record.label or record.task
    fact = facts.get(record.pid)
    timeout = (fact.timeout if fact else None) or record.timeout
    timed_out = (fact is not None and fact.timed_out) or (
        record.error is not None and record.error.exit_code == StepTimedOutError.EXIT_CODE
    )
    if not timed_out and fact is None and record.state == RUNNING and timeout:
        timed_out = time.time() - record.started > timeout  # a Docker task past its deadline
    if timed_out:
        return StepTimedOutError(
            f"step {label} timed out after {timeout or 0:g}s",
            hint="give it more time with --task-timeout / KFP_MLFLOW_TASK_TIMEOUT, or "
            "kfp_mlflow.set_timeout(task, seconds) on the task",
        )
    if record.state == FAILED and record.error is not None:
        return StepFailedError(
            f"step {label} failed: {record.error.message}",
            hint=record.error.hint or hint,
            exit_code=record.error.exit_code,
        )
    seconds = fact.seconds if fact else time.time() - record.started
    return _died(label, fact, seconds, hint)


def _died(label: str, fact: ExitFacts | None, seconds: float, hint: str) -> StepFailedError:
    """A task whose process ended without reporting how: say what the supervisor saw."""
    memory = f", peak memory {fact.peak_rss_mb:.0f} MB" if fact and fact.peak_rss_mb else ""
    if fact is None:
        cause = "stopped reporting: its process is gone and nothing saw how it ended"
    elif fact.signal is None:
        cause = f"exited with status {fact.exit_code} without reporting a result"
    elif fact.oom_kill:
        cause = f"was killed by the kernel's out-of-memory killer ({fact.oom_evidence})"
        hint = f"give the task more memory or use less data; {hint}"
    elif fact.signal == signal.SIGKILL:
        evidence = (
            f"not the out-of-memory killer: {fact.oom_evidence}"
            if fact.oom_kill is False
            else "no memory cgroup counter tells whether the out-of-memory killer did it"
        )
        cause = f"was killed by SIGKILL ({evidence})"
    else:
        cause = f"was ended by {fact.signal_name}"
    return StepFailedError(f"step {label} {cause} after {seconds:.1f}s{memory}", hint=hint)


def _decision(records: list[TaskRecord]) -> Decision | None:
    """The register step's decision, read from its output's contract record."""
    return _record(records, Decision)


def _record(records: list[TaskRecord], contract: type[C]) -> C | None:
    for record in reversed(records):
        if record.state != SUCCEEDED:
            continue
        for name, output in record.outputs.items():
            metadata = output.get("metadata", {})
            if metadata.get(CONTRACT_KEY) == contract.CONTRACT:
                return contract.from_metadata(metadata, input_name=name, consumer="kfp-mlflow")
    return None


def _close_parents(kfp_run_ids: set[str], error: KfpMlflowError | None, settings: Settings) -> None:
    """End each parent run with the final state, as the exit handler does on a cluster, for
    pipelines that have none. Idempotent; best effort (the run's verdict is already known)."""
    from kfp_mlflow.tracking.runs import close_parent_run

    state = "SUCCEEDED" if error is None else "FAILED"
    for kfp_run_id in kfp_run_ids:
        with contextlib.suppress(KfpMlflowError):
            close_parent_run(kfp_run_id, state, str(error or ""), settings)


def _end_killed(kfp_run_ids: set[str], settings: Settings) -> int:
    """Mark this run's open MLflow runs KILLED; how many of its runs are KILLED now."""
    from kfp_mlflow.tracking.runs import end_open_runs, runs_of

    with contextlib.suppress(KfpMlflowError):
        end_open_runs(kfp_run_ids, "KILLED", settings)
        return sum(1 for run in runs_of(kfp_run_ids, settings) if run.info.status == "KILLED")
    return 0
