"""Run any pipeline on this machine with kfp.local, tracked by a real MLflow server.

kfp.local runs each task as a subprocess of the current interpreter (``use_venv=False``): the
same component definitions as on the cluster, no image and no network. Outcomes come from
structured data only: every kfp-mlflow task writes a status record (see
:mod:`kfp_mlflow.task_records`) that the runner polls for progress and reads for the result —
the failing step's own error class, message and exit code, and the register step's decision.
kfp.local's own log goes to a file that nothing parses.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal, TypeVar

from kfp_mlflow.contracts import CONTRACT_KEY, Contract, Decision
from kfp_mlflow.exceptions import (
    ConfigError,
    InterruptedRunError,
    KfpMlflowError,
    PipelineStoppedError,
    StepFailedError,
    TrackingError,
)
from kfp_mlflow.ledger import forget, reconcile, remember
from kfp_mlflow.local_server import ensure_server, is_healthy
from kfp_mlflow.settings import ENV_PREFIX, Settings, get_settings, mlflow_http_environment
from kfp_mlflow.task_records import FAILED, RUNNING, SUCCEEDED, Stop, TaskRecord, read_records

_POLL_SECONDS = 0.25
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
    pipeline: Any = None,
    arguments: dict[str, Any] | None = None,
    settings: Settings | None = None,
    on_event: Callable[[TaskEvent], None] = lambda event: None,
    runner: Literal["subprocess", "docker"] = "subprocess",
) -> LocalRun:
    """Run ``pipeline`` (default: the training pipeline) with kfp.local.

    ``arguments`` override parameter defaults; they are checked before anything starts (see
    :mod:`kfp_mlflow.validation`). Returns what happened; ``LocalRun.error`` holds the failing
    step's own error (``raise_for_failure()`` raises it). The caller's environment is left as
    it was. ``runner="docker"`` runs every task in the component image (``settings.image``,
    built by ``.ci/build-image``) with kfp.local's DockerRunner, on the host network so tasks
    reach the tracking server; tracking, artifacts and decision are the same.
    """
    from kfp import local

    from kfp_mlflow.ir_checks import check_pipeline
    from kfp_mlflow.pipeline_loading import coerce_arguments, load_pipeline, merged_arguments
    from kfp_mlflow.validation import check_arguments

    settings = settings or get_settings()
    pipeline = pipeline if pipeline is not None else load_pipeline(None, settings)
    arguments = coerce_arguments(pipeline, dict(arguments or {}))
    check_arguments(merged_arguments(pipeline, arguments))
    check_pipeline(pipeline)  # the graph a cluster would reject, rejected here too
    started = time.perf_counter()
    tracking_uri = resolve_tracking_uri(settings)
    # Runs an earlier, dead local run left open against this server are closed first.
    reconcile(settings, tracking_uri)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = (settings.work_dir / "runs" / stamp).resolve()
    status_dir = run_dir / "tasks"
    status_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "pipeline.log"
    task_env, task_runner = _task_runner(runner, settings, tracking_uri, run_dir, status_dir)

    def opened(kfp_run_id: str) -> None:
        remember(settings, kfp_run_id, tracking_uri, settings.experiment_name)

    watcher = _Watcher(status_dir, on_event, opened)
    failure: BaseException | None = None
    with _environment(task_env), log_path.open("w") as log, warnings.catch_warnings():
        # kfp warns that the project image is not a Python image; locally that is the point.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        local.init(runner=task_runner, pipeline_root=str(run_dir), raise_on_error=True)
        task_settings = get_settings()
        watcher.start()
        try:
            with (
                contextlib.redirect_stdout(log),
                contextlib.redirect_stderr(log),
                _stop_on_interrupt(status_dir, task_settings),
            ):
                pipeline(**arguments)
        except KeyboardInterrupt:
            watcher.stop()
            killed = _count_killed(status_dir, task_settings)
            for kfp_run_id in {record.kfp_run_id for record in read_records(status_dir)}:
                forget(settings, kfp_run_id)
            raise InterruptedRunError(
                f"interrupted; {killed} MLflow run(s) of this pipeline run marked KILLED",
                hint=f"partial log: {log_path}",
            ) from None
        except RuntimeError as error:  # kfp.local: a task ended in FAILURE
            failure = error
        finally:
            watcher.stop()
        records = read_records(status_dir)
        kfp_run_ids = {record.kfp_run_id for record in records}
        outcome = _failure(records, failure, log_path) if failure else None
        # With the server down, closing would only wait out the request bounds again: the
        # ledger keeps the runs for the next command (or `kfp-mlflow runs reconcile`).
        if not tracking_uri.startswith("http") or is_healthy(tracking_uri, timeout=3.0):
            _close_parents(kfp_run_ids, outcome, task_settings)
            for kfp_run_id in kfp_run_ids:
                forget(settings, kfp_run_id)
    get_settings.cache_clear()
    return LocalRun(
        succeeded=outcome is None,
        tracking_uri=tracking_uri,
        run_dir=run_dir,
        log_path=log_path,
        tasks=records,
        decision=_decision(records),
        error=outcome,
        seconds=time.perf_counter() - started,
        kfp_run_ids=kfp_run_ids,
    )


# The component image's user (components/Dockerfile: USER 10001, group 0).
IMAGE_UID = 10001


def _task_runner(
    runner: str, settings: Settings, tracking_uri: str, run_dir: Path, status_dir: Path
) -> tuple[dict[str, str], Any]:
    """The tasks' environment (subprocesses or containers: how settings reach them) and the
    kfp.local runner."""
    from kfp import local

    task_env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": settings.experiment_name,
        f"{ENV_PREFIX}RUNNER": "local" if runner == "subprocess" else "docker",
        f"{ENV_PREFIX}STATUS_DIR": str(status_dir),
        # Usage telemetry has nowhere to go from a closed network; tasks need not try.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **mlflow_http_environment(settings),
    }
    if runner == "docker":
        # The image carries the commit it was built from: that is the code that runs.
        return task_env, docker_runner(settings, run_dir, task_env)
    commit = settings.git_commit or git_commit(Path.cwd())
    if commit:
        task_env[f"{ENV_PREFIX}GIT_COMMIT"] = commit
    return task_env, local.SubprocessRunner(use_venv=False)


def docker_runner(settings: Settings, run_dir: Path, task_env: dict[str, str]) -> Any:
    """kfp.local's DockerRunner for ``settings.image``, which must be in the local engine.

    The pipeline root is mounted into every task at its own path, so it must be writable by
    the image's non-root user: as root, hand it over; as anyone else, run tasks as yourself.
    """
    from kfp import local

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
    task_env[f"{ENV_PREFIX}IMAGE_DIGEST"] = str(image.id)
    run_args: dict[str, Any] = {}
    if os.getuid() == 0:
        for folder in (run_dir, *run_dir.rglob("*")):
            os.chown(folder, IMAGE_UID, 0)
    else:
        run_args["user"] = f"{os.getuid()}:0"
    return local.DockerRunner(network_mode="host", environment=dict(task_env), **run_args)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` (and one BLAS thread per task unless the user chose) for the block only."""
    saved = dict(os.environ)
    os.environ.update(values)
    # kfp.local runs two tasks at once: one BLAS/OpenMP thread each keeps them off each other's
    # cores (a user's own setting wins).
    for threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(threads, "1")
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


class _Watcher:
    """Polls the status directory and reports each task's start and end once."""

    def __init__(
        self,
        directory: Path,
        on_event: Callable[[TaskEvent], None],
        on_new_run: Callable[[str], None],
    ) -> None:
        self._directory = directory
        self._on_event = on_event
        self._on_new_run = on_new_run
        self._runs: set[str] = set()
        self._seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="kfp-mlflow-watch")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self._scan()  # the final states

    def _loop(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            self._scan()

    def _scan(self) -> None:
        for record in read_records(self._directory):
            if record.kfp_run_id not in self._runs:
                self._runs.add(record.kfp_run_id)
                self._on_new_run(record.kfp_run_id)
            if record.state == FAILED and Stop.load(self._directory) is None:
                # Tasks not started yet do no work once one has failed.
                code = record.error.exit_code if record.error else 6
                Stop(record.label or record.task, code).save(self._directory)
            if self._seen.get(record.record_id) == record.state:
                continue
            if record.state != RUNNING and record.record_id not in self._seen:
                self._emit(record, RUNNING)
            self._seen[record.record_id] = record.state
            self._emit(record, record.state)

    def _emit(self, record: TaskRecord, state: str) -> None:
        label = record.label or record.task
        with contextlib.suppress(Exception):  # a broken printer must not stop the run
            self._on_event(TaskEvent(label, state, record.seconds if state != RUNNING else 0.0))


def _failure(records: list[TaskRecord], failure: BaseException, log_path: Path) -> KfpMlflowError:
    """The error the run ends with: the first step that failed for a reason of its own."""
    hint = f"full log: {log_path}"
    failed = sorted(
        (r for r in records if r.state == FAILED and r.error is not None),
        key=lambda r: (r.error.error_class == PipelineStoppedError.__name__, r.ended or 0),  # type: ignore[union-attr]
    )
    if failed:
        first = failed[0]
        assert first.error is not None
        return StepFailedError(
            f"step {first.label or first.task} failed: {first.error.message}",
            hint=first.error.hint or hint,
            exit_code=first.error.exit_code,
        )
    vanished = [r for r in records if r.state == RUNNING]
    if vanished:
        task = vanished[0]
        memory = f", peak memory {task.peak_rss_mb:.0f} MB" if task.peak_rss_mb else ""
        return StepFailedError(
            f"step {task.label or task.task} was killed by a signal after "
            f"{time.time() - task.started:.0f}s{memory} (SIGKILL: most likely the kernel's "
            "out-of-memory killer)",
            hint=f"give the task more memory or use less data; {hint}",
        )
    # A task that is not a kfp-mlflow component failed; kfp.local names it in its exception.
    return StepFailedError(f"a task failed: {_plain(str(failure))}", hint=hint)


def _plain(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


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
    from kfp_mlflow.tracking import close_parent_run

    state = "SUCCEEDED" if error is None else "FAILED"
    for kfp_run_id in kfp_run_ids:
        with contextlib.suppress(KfpMlflowError):
            close_parent_run(kfp_run_id, state, str(error or ""), settings)


def _count_killed(status_dir: Path, settings: Settings) -> int:
    """How many MLflow runs of this pipeline run are KILLED (by the runner or by the tasks)."""
    from kfp_mlflow.tracking import end_open_runs, runs_of

    kfp_run_ids = {record.kfp_run_id for record in read_records(status_dir)}
    with contextlib.suppress(KfpMlflowError):
        end_open_runs(kfp_run_ids, "KILLED", settings)
        return sum(1 for run in runs_of(kfp_run_ids, settings) if run.info.status == "KILLED")
    return 0


@contextlib.contextmanager
def _stop_on_interrupt(status_dir: Path, settings: Settings) -> Iterator[None]:
    """On Ctrl-C, mark this run's MLflow runs KILLED at once, then interrupt as usual.

    kfp.local answers a KeyboardInterrupt by draining its queue of tasks; with the parent run
    KILLED first, every task it still starts refuses to work (see tracking.task_run).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        from kfp_mlflow.tracking import end_open_runs

        kfp_run_ids = {record.kfp_run_id for record in read_records(status_dir)}
        with contextlib.suppress(Exception):
            end_open_runs(kfp_run_ids, "KILLED", settings)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
