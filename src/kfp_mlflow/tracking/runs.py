"""The MLflow run hierarchy of a pipeline run: one parent run, one child run per task.

Runs are found and written through an explicit ``MlflowClient``, never the fluent API: the fluent
API silently resumes ``MLFLOW_RUN_ID`` from the environment instead of nesting, which is exactly
what KFP's own MLflow integration injects. When that integration is on (``MLFLOW_RUN_ID`` set),
KFP owns the hierarchy: a step logs into its injected run and creates no run of its own.

Each task buffers its params, metrics and tags and sends them in one ``log_batch`` (the client
chunks at MLflow's per-request limits): a step makes a handful of requests, not one per value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kfp_mlflow.core.exceptions import PipelineStoppedError, TrackingError
from kfp_mlflow.core.settings import (
    Settings,
    apply_mlflow_request_bounds,
    get_settings,
    mlflow_process_uri,
)
from kfp_mlflow.core.tag_schema import (
    ROLE_PIPELINE,
    ROLE_TASK,
    TAG_DECISION_STATE,
    TAG_ERROR,
    TAG_FINAL_STATE,
    TAG_KFP_RUN_ID,
    TAG_KFP_RUN_NAME,
    TAG_KFP_RUN_URL,
    TAG_KFP_TASK_NAME,
    TAG_PARENT,
    TAG_ROLE,
    TAG_STEP,
)
from kfp_mlflow.tracking.failures import FailureKind, classify
from kfp_mlflow.tracking.provenance import provenance_tags

if TYPE_CHECKING:
    from mlflow import MlflowClient

# KFP's own tag names (as its MLflow integration writes them), so both hierarchies read alike.

# MLflow caps a tag value at 8,000 characters; an error message is cut well before.
_MAX_TAG_CHARS = 4000
# How long a task that created a parent run waits before reading back which parent is oldest:
# longer than a create request takes to commit on a busy server.
_PARENT_SETTLE_S = 1.0
# KFP's final task states → MLflow run statuses.
_FINAL_STATUS = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELED": "KILLED"}


def kfp_run_url(ui_url: str, run_id: str) -> str:
    """The KFP UI page of a run."""
    return f"{ui_url.rstrip('/')}/#/runs/details/{run_id}"


def run_link(settings: Settings, experiment_id: str, run_id: str) -> str | None:
    """The MLflow UI page of a run, when the UI address is known."""
    base = settings.mlflow_ui_url or settings.tracking_uri
    if not base or not base.startswith(("http://", "https://")) or not experiment_id:
        return None
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


@dataclass(frozen=True)
class KfpContext:
    """Which KFP run and task the code runs in (KFP placeholders resolve these)."""

    run_id: str
    run_name: str = ""
    task_name: str = ""

    def tags(self, settings: Settings) -> dict[str, str]:
        tags = {TAG_KFP_RUN_ID: self.run_id}
        if self.run_name:
            tags[TAG_KFP_RUN_NAME] = self.run_name
        if settings.kfp_ui_url and settings.runner == "cluster":
            tags[TAG_KFP_RUN_URL] = kfp_run_url(settings.kfp_ui_url, self.run_id)
        return tags


def tracking_client(settings: Settings | None = None) -> MlflowClient:
    """A client for the configured server; a clear error when none is configured."""
    settings = settings or get_settings()
    if not settings.tracking_uri:
        raise TrackingError(
            "MLFLOW_TRACKING_URI is not set",
            hint="point it at an MLflow tracking server (http://host:5000)",
        )
    from mlflow import MlflowClient

    # The MLflow client reads its request bounds from its variables only, at each request.
    apply_mlflow_request_bounds(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


# Some MLflow APIs read the process-wide URI only (see core.settings).
tracking_uri_env = mlflow_process_uri


@contextmanager
def mlflow_errors(action: str) -> Iterator[None]:
    """Turn MLflow's transport and REST errors into one TrackingError naming the server and the
    action, worded by what failed (:func:`kfp_mlflow.tracking.failures.classify`; the original
    error is
    the ``__cause__``). Requests are bounded (see ``Settings.tracking_request_timeout``), so this
    ends."""
    from mlflow.exceptions import MlflowException
    from requests.exceptions import RequestException

    server = get_settings().tracking_uri or "(no MLFLOW_TRACKING_URI)"
    try:
        yield
    except (MlflowException, RequestException) as error:
        text = _first_line(str(getattr(error, "message", error)))
        kind = classify(error).kind
        if kind is FailureKind.UNREACHABLE:
            raise TrackingError(
                f"MLflow tracking server {server} unreachable while trying to {action}: {text}",
                hint="check MLFLOW_TRACKING_URI and that the server is up",
            ) from error
        if kind is FailureKind.SERVER:
            raise TrackingError(
                f"MLflow tracking server {server} failed while trying to {action}: {text}",
                hint="check that the server and its artifact store are up",
            ) from error
        message = error.message if isinstance(error, MlflowException) else str(error)
        raise TrackingError(f"MLflow refused to {action}: {message}") from error


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def experiment_id_for(client: MlflowClient, name: str, settings: Settings) -> str:
    """The experiment to log into: KFP's injected one, else ``name`` (created on first use)."""
    if settings.injected_experiment_id:
        return settings.injected_experiment_id
    with mlflow_errors(f"open experiment {name!r}"):
        return get_or_create_experiment(client, name)


def get_or_create_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created on first use; safe when two processes race."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:  # created meanwhile by a concurrent process
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def find_parent_runs(client: MlflowClient, experiment_id: str, kfp_run_id: str) -> list[Any]:
    """The parent runs opened for KFP run ``kfp_run_id``, oldest first (normally one)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{TAG_KFP_RUN_ID}` = '{kfp_run_id}' and tags.`{TAG_ROLE}` = '{ROLE_PIPELINE}'"
        ),
        max_results=50,
    )
    return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))


def find_parent_run(client: MlflowClient, experiment_id: str, kfp_run_id: str) -> str | None:
    """The parent run of KFP run ``kfp_run_id``, if one was opened."""
    runs = find_parent_runs(client, experiment_id, kfp_run_id)
    return str(runs[0].info.run_id) if runs else None


def open_parent_run(kfp: KfpContext, settings: Settings | None = None) -> str:
    """Get or create the parent run of this pipeline run.

    Idempotent (a retried task reuses it) and safe when tasks start in parallel: MLflow has no
    unique constraint on tags, so a task that created a parent reads again, and if an older
    parent exists it deletes its own and joins that one. Every task agrees on the oldest.

    "Oldest" is by the client-side start time, and a parallel task's create can become visible
    after this one's, so the read-back waits :data:`_PARENT_SETTLE_S` first (found by the fault
    tests: two first tasks each kept their own parent). :func:`close_parent_run` merges any
    duplicate a slower server still let through.
    """
    settings = settings or get_settings()
    client = tracking_client(settings)
    if settings.injected_run_id:
        # KFP's integration made the hierarchy: the parent is the injected run's parent.
        with mlflow_errors("read the injected run"):
            injected = client.get_run(settings.injected_run_id)
        return str(injected.data.tags.get(TAG_PARENT, settings.injected_run_id))
    experiment_id = experiment_id_for(client, settings.experiment_name, settings)
    with mlflow_errors("open the pipeline's parent run"), _local_lock(settings, kfp) as locked:
        existing = find_parent_run(client, experiment_id, kfp.run_id)
        if existing:
            return existing
        tags = {**kfp.tags(settings), **provenance_tags(settings), TAG_ROLE: ROLE_PIPELINE}
        mine = str(
            client.create_run(
                experiment_id, run_name=kfp.run_name or f"kfp-{kfp.run_id}", tags=tags
            ).info.run_id
        )
        if locked:  # every task of this run looks under the same lock: nobody raced us
            return mine
        time.sleep(_PARENT_SETTLE_S)
        oldest = find_parent_run(client, experiment_id, kfp.run_id) or mine
        if oldest != mine:
            client.delete_run(mine)
    return oldest


@contextmanager
def _local_lock(settings: Settings, kfp: KfpContext) -> Iterator[bool]:
    """On a local run (a status directory shared by its tasks), an exclusive lock around
    get-or-create of the parent run, so no read-back wait is needed; elsewhere no lock (False)."""
    if settings.status_dir is None:
        yield False
        return
    import fcntl

    settings.status_dir.mkdir(parents=True, exist_ok=True)
    with (settings.status_dir / f".parent-{kfp.run_id}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class TaskRun:
    """The run one task logs into; values are buffered and sent in one batch at the end."""

    client: MlflowClient
    run_id: str
    parent_run_id: str
    experiment_id: str
    kfp: KfpContext
    step: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def log_params(self, values: dict[str, Any]) -> None:
        self.params.update({key: _param_text(value) for key, value in values.items()})

    def log_metrics(self, values: dict[str, float]) -> None:
        self.metrics.update({key: float(value) for key, value in values.items()})

    def set_tags(self, values: dict[str, Any]) -> None:
        self.tags.update({key: str(value) for key, value in values.items()})

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        """Upload a file or a directory to this run's artifacts (immediately)."""
        import os

        with mlflow_errors(f"upload {local_path}"):
            if os.path.isdir(local_path):
                self.client.log_artifacts(self.run_id, local_path, artifact_path)
            else:
                self.client.log_artifact(self.run_id, local_path, artifact_path)

    def log_dict(self, value: dict[str, Any], artifact_file: str) -> None:
        with mlflow_errors(f"upload {artifact_file}"):
            self.client.log_dict(self.run_id, value, artifact_file)

    def flush(self) -> None:
        """Send everything buffered in one ``log_batch`` call (chunked by the client)."""
        log_values(
            self.client, self.run_id, params=self.params, metrics=self.metrics, tags=self.tags
        )
        self.params, self.metrics, self.tags = {}, {}, {}


# MLflow keeps a param value up to 6,000 characters; a longer one is a design smell anyway.
_MAX_PARAM_CHARS = 500


def _param_text(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 1] + "…"


def log_values(
    client: MlflowClient,
    run_id: str,
    *,
    params: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    tags: dict[str, Any] | None = None,
) -> None:
    """Params, metrics and tags of a run in one ``log_batch`` (chunked by the client)."""
    if not (params or metrics or tags):
        return
    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    with mlflow_errors(f"log to run {run_id}"):
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )


# The task being executed, per execution context (a thread or task of its own sees its own).
_ACTIVE: ContextVar[TaskRun | None] = ContextVar("kfp_mlflow_task_run", default=None)
_IDENTITY: ContextVar[KfpContext | None] = ContextVar("kfp_mlflow_kfp_identity", default=None)


@contextmanager
def kfp_identity(kfp: KfpContext) -> Iterator[KfpContext]:
    """Make ``kfp`` the identity :func:`current_kfp` returns while the block runs."""
    token = _IDENTITY.set(kfp)
    try:
        yield kfp
    finally:
        _IDENTITY.reset(token)


def current_kfp() -> KfpContext:
    """The KFP run and task the executing task belongs to (inside a kfp-mlflow component)."""
    kfp = _IDENTITY.get()
    if kfp is None:
        raise TrackingError(
            "no KFP identity is known here",
            hint="call current_kfp() inside a component made with kfp_mlflow.component",
        )
    return kfp


def active_task_run() -> TaskRun | None:
    """The task run being executed, or None outside a task (no error: for plugins)."""
    return _ACTIVE.get()


def current_run() -> TaskRun:
    """The MLflow run of the task being executed (inside a ``kfp_mlflow.component`` task)."""
    run = _ACTIVE.get()
    if run is None:
        raise TrackingError(
            "no kfp-mlflow task run is active",
            hint="call current_run() inside a component made with kfp_mlflow.component",
        )
    return run


@contextmanager
def task_run(
    *,
    step: str,
    kfp: KfpContext,
    run_name: str | None = None,
    settings: Settings | None = None,
) -> Iterator[TaskRun]:
    """The child run of one task under the pipeline's parent run (found or created).

    FAILED (with its parent) if the body raises, KILLED on an interrupt, else FINISHED. While the
    body runs, :func:`current_run` returns it.
    """
    settings = settings or get_settings()
    client = tracking_client(settings)
    parent_run_id = open_parent_run(kfp, settings)
    tags = {
        **kfp.tags(settings),
        **provenance_tags(settings),
        TAG_KFP_TASK_NAME: kfp.task_name or step,
        TAG_STEP: step,
        TAG_ROLE: ROLE_TASK,
    }
    owned = not settings.injected_run_id
    with mlflow_errors(f"open the {step} run"):
        if owned:
            parent = client.get_run(parent_run_id)
            if parent.info.status in ("KILLED", "FAILED"):
                # The pipeline was stopped or already failed: a task that kfp.local (or a retry)
                # still launches must do nothing, least of all register a model.
                raise PipelineStoppedError(
                    f"not starting {step}: the pipeline run already ended "
                    f"(MLflow parent run {parent_run_id} is {parent.info.status})"
                )
            experiment_id = str(parent.info.experiment_id)
            run = client.create_run(
                experiment_id,
                run_name=run_name or step,
                tags={**tags, TAG_PARENT: parent_run_id},
            )
            run_id = str(run.info.run_id)
        else:
            run_id = str(settings.injected_run_id)
            experiment_id = str(settings.injected_experiment_id or "")
    task = TaskRun(client, run_id, parent_run_id, experiment_id, kfp, step)
    if not owned:
        task.set_tags(tags)
    token = _ACTIVE.set(task)
    try:
        yield task
    except BaseException as error:
        message = f"{type(error).__name__}: {error}"[:_MAX_TAG_CHARS]
        task.set_tags({TAG_ERROR: message})
        interrupted = isinstance(error, KeyboardInterrupt | SystemExit)
        _fail(task, owned, message, "KILLED" if interrupted else "FAILED")
        raise
    finally:
        _ACTIVE.reset(token)
    task.flush()
    if owned:
        with mlflow_errors(f"end the {step} run"):
            client.set_terminated(run_id, "FINISHED")


def _fail(task: TaskRun, owned: bool, message: str, status: str) -> None:
    """Best effort: record the failure without hiding the error that caused it."""
    try:
        task.flush()
        if owned:
            task.client.set_terminated(task.run_id, status)
            if not task.client.get_run(task.parent_run_id).data.tags.get(TAG_ERROR):
                task.client.set_tag(task.parent_run_id, TAG_ERROR, message)
            task.client.set_terminated(task.parent_run_id, status)
    except Exception:
        pass


def end_parent_run(
    client: MlflowClient, parent_run_id: str, state: str, settings: Settings | None = None
) -> None:
    """End the parent run with KFP's final ``state`` (unless KFP's integration owns it)."""
    settings = settings or get_settings()
    if settings.injected_run_id:
        return
    log_values(client, parent_run_id, tags={TAG_FINAL_STATE: state.upper()})
    with mlflow_errors("end the pipeline's parent run"):
        client.set_terminated(parent_run_id, _FINAL_STATUS.get(state.upper(), "FAILED"))


def end_open_runs(
    kfp_run_ids: set[str], status: str, settings: Settings | None = None, reason: str = ""
) -> set[str]:
    """End as ``status`` every run of these KFP runs still RUNNING; the ids it ended.

    Only runs tagged with one of ``kfp_run_ids`` are touched, so a concurrent pipeline's runs
    never are.
    """
    if not kfp_run_ids:
        return set()
    settings = settings or get_settings()
    client = tracking_client(settings)
    ended: set[str] = set()
    with mlflow_errors("end the pipeline's open runs"):
        experiment = client.get_experiment_by_name(settings.experiment_name)
        if experiment is None:
            return ended
        for kfp_run_id in sorted(kfp_run_ids):
            for run in _open_runs_of(client, str(experiment.experiment_id), kfp_run_id):
                ended.add(_end(client, run, status, reason))
            if status != "FINISHED":
                interrupt_undecided_versions(client, kfp_run_id)
    return ended


def end_runs(
    run_ids: set[str], status: str, settings: Settings | None = None, reason: str = ""
) -> set[str]:
    """End as ``status`` those of ``run_ids`` still RUNNING (a deleted one is skipped); the ids
    it ended."""
    from mlflow.exceptions import MlflowException

    client = tracking_client(settings or get_settings())
    ended: set[str] = set()
    with mlflow_errors("end open runs"):
        for run_id in sorted(run_ids):
            try:
                run = client.get_run(run_id)
            except MlflowException as error:
                if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                    continue
                raise
            if run.info.status == "RUNNING":
                ended.add(_end(client, run, status, reason))
    return ended


def _end(client: MlflowClient, run: Any, status: str, reason: str) -> str:
    """End ``run`` as ``status``, recording ``reason`` unless it already says why it failed."""
    if reason and TAG_ERROR not in run.data.tags:
        client.set_tag(run.info.run_id, TAG_ERROR, reason)
    client.set_terminated(run.info.run_id, status)
    return str(run.info.run_id)


def runs_of(kfp_run_ids: set[str], settings: Settings | None = None) -> list[Any]:
    """Every MLflow run (parent and children) tagged with one of these KFP run ids."""
    settings = settings or get_settings()
    client = tracking_client(settings)
    with mlflow_errors("read the pipeline's runs"):
        experiment = client.get_experiment_by_name(settings.experiment_name)
        if experiment is None:
            return []
        return [
            run
            for kfp_run_id in sorted(kfp_run_ids)
            for run in client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{TAG_KFP_RUN_ID}` = '{kfp_run_id}'",
            )
        ]


def _merge_into(client: MlflowClient, experiment_id: str, duplicate: str, parent: str) -> None:
    """Move the children of a duplicate parent run under ``parent`` and delete the duplicate."""
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.`{TAG_PARENT}` = '{duplicate}'", max_results=1000
    )
    for child in children:
        client.set_tag(child.info.run_id, TAG_PARENT, parent)
    client.set_terminated(duplicate, "FINISHED")
    client.delete_run(duplicate)


def _open_runs_of(client: MlflowClient, experiment_id: str, kfp_run_id: str) -> list[Any]:
    """Every RUNNING run of KFP run ``kfp_run_id``: those tagged with it, and those under one
    of them at any depth (runs a step opened without the tag, e.g. through the client API) —
    as KFP's own MLflow plugin closes them, recursively. Two searches, whatever the depth."""
    tagged = client.search_runs(
        [experiment_id], filter_string=f"tags.`{TAG_KFP_RUN_ID}` = '{kfp_run_id}'", max_results=1000
    )
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    ours = {str(run.info.run_id) for run in tagged}
    parent_of = {str(run.info.run_id): run.data.tags.get(TAG_PARENT) for run in [*tagged, *running]}

    def belongs(run_id: str | None, depth: int = 0) -> bool:
        if run_id is None or depth > 20:
            return False
        return run_id in ours or belongs(parent_of.get(run_id), depth + 1)

    return [run for run in running if belongs(str(run.info.run_id))]


def interrupt_undecided_versions(client: MlflowClient, kfp_run_id: str) -> list[str]:
    """Mark ``interrupted`` the registered versions KFP run ``kfp_run_id`` left ``pending``
    (its register step died between registering and deciding); the names@versions marked."""
    pending = client.search_model_versions(
        f"tags.`{TAG_KFP_RUN_ID}` = '{kfp_run_id}' and tags.`{TAG_DECISION_STATE}` = 'pending'"
    )
    marked = []
    for version in pending:
        client.set_model_version_tag(
            version.name, version.version, TAG_DECISION_STATE, "interrupted"
        )
        marked.append(f"{version.name}@{version.version}")
    return marked


def close_parent_run(
    kfp_run_id: str,
    state: str,
    error_message: str = "",
    settings: Settings | None = None,
) -> str | None:
    """End the parent run with the pipeline's final state; fail children left RUNNING.

    Runs as the pipeline's exit handler (and after a local run), so it also covers tasks that
    died without a word (evicted pod, OOM kill, cancelled run). Idempotent.
    """
    settings = settings or get_settings()
    if settings.injected_run_id:
        return None  # KFP's integration ends the runs it made
    client = tracking_client(settings)
    experiment_id = experiment_id_for(client, settings.experiment_name, settings)
    status = _FINAL_STATUS.get(state.upper(), "FAILED")
    with mlflow_errors("close the pipeline's parent run"):
        parents = find_parent_runs(client, experiment_id, kfp_run_id)
        if not parents:
            return None
        parent_run_id = str(parents[0].info.run_id)
        for duplicate in parents[1:]:
            _merge_into(client, experiment_id, str(duplicate.info.run_id), parent_run_id)
        if status != "FINISHED":
            interrupt_undecided_versions(client, kfp_run_id)
        for child in _open_runs_of(client, experiment_id, kfp_run_id):
            if str(child.info.run_id) != parent_run_id:
                client.set_terminated(
                    child.info.run_id, "KILLED" if status == "KILLED" else "FAILED"
                )
        parent = client.get_run(parent_run_id)
        if parent.info.status != "RUNNING":  # a failing step (or an earlier close) ended it
            if TAG_FINAL_STATE not in parent.data.tags:
                client.set_tag(parent_run_id, TAG_FINAL_STATE, state.upper())
            return str(parent_run_id)
        # The failing step already recorded its own error; KFP's ("Task x failed.") says less.
        if status != "FINISHED" and error_message and not parent.data.tags.get(TAG_ERROR):
            client.set_tag(parent_run_id, TAG_ERROR, error_message[:_MAX_TAG_CHARS])
    end_parent_run(client, parent_run_id, state, settings)
    return str(parent_run_id)
