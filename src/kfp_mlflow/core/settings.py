"""The one place that reads the environment.

Every setting has the prefix ``KFP_MLFLOW_`` (``KFP_MLFLOW_MODEL_NAME``...), except the standard
variables MLflow and Kubeflow already define (``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``,
``MLFLOW_RUN_ID``, ``MLFLOW_EXPERIMENT_ID``), which are read under their own names so that KFP's
built-in MLflow integration and MLflow's own tooling configure us without translation.

MLflow credentials (``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``/``_TOKEN``) and S3 credentials
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) are read by the libraries that use them; they
appear here only as secret-typed fields so that ``kfp-mlflow settings`` can show whether they are
set without printing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from kfp_mlflow._version import __version__

# Re-exported: `kfp-mlflow run --task` (cli/local.py) types its option with it from here.
from kfp_mlflow.core.contracts import TaskType as TaskType  # noqa: PLC0414 - explicit re-export

ENV_PREFIX = "KFP_MLFLOW_"


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Settings for every kfp-mlflow command and pipeline step."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # --- MLflow tracking (standard MLflow variable names) -----------------------------------
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=_alias("MLFLOW_TRACKING_URI"),
        description="MLflow tracking server. Unset for `run`: a local server is started.",
    )
    experiment_name: str = Field(
        default="kfp-mlflow",
        validation_alias=_alias("MLFLOW_EXPERIMENT_NAME"),
        description="MLflow experiment that holds the pipeline runs.",
    )
    injected_run_id: str | None = Field(
        default=None,
        validation_alias=_alias("MLFLOW_RUN_ID"),
        description="Set by KFP's MLflow integration: the task's own nested run, logged into.",
    )
    injected_experiment_id: str | None = Field(
        default=None,
        validation_alias=_alias("MLFLOW_EXPERIMENT_ID"),
        description="Set by KFP's MLflow integration alongside MLFLOW_RUN_ID.",
    )
    mlflow_ui_url: str | None = Field(
        default=None,
        description="MLflow UI address for links in reports (defaults to the tracking URI).",
    )
    tracking_username: SecretStr | None = Field(
        default=None,
        validation_alias=_alias("MLFLOW_TRACKING_USERNAME"),
        description="MLflow server credential, used by the MLflow client itself (masked).",
    )
    tracking_password: SecretStr | None = Field(
        default=None,
        validation_alias=_alias("MLFLOW_TRACKING_PASSWORD"),
        description="MLflow server credential, used by the MLflow client itself (masked).",
    )
    tracking_token: SecretStr | None = Field(
        default=None,
        validation_alias=_alias("MLFLOW_TRACKING_TOKEN"),
        description="MLflow server credential, used by the MLflow client itself (masked).",
    )

    # How long a dead or stuck server may hold a task: each request waits at most
    # timeout × (retries + 1) plus backoff (1, 2 s): 25 × 3 + 3 = 78 s with the defaults, under
    # the 90 s bound. The timeout outlasts a 20 s pause on its own: a request in flight when the
    # server stops is answered when it resumes (urllib3 need not retry a timed-out POST).
    tracking_request_timeout: float = Field(
        default=25.0,
        gt=0,
        le=600,
        validation_alias=AliasChoices(
            "MLFLOW_HTTP_REQUEST_TIMEOUT", "KFP_MLFLOW_TRACKING_REQUEST_TIMEOUT"
        ),
        description="Seconds one MLflow request may take before it is retried.",
    )
    tracking_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        validation_alias=AliasChoices(
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "KFP_MLFLOW_TRACKING_MAX_RETRIES"
        ),
        description="Retries of a failed MLflow request.",
    )
    tracking_backoff_factor: float = Field(
        default=1.0,
        ge=0,
        le=10,
        validation_alias=AliasChoices(
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "KFP_MLFLOW_TRACKING_BACKOFF_FACTOR"
        ),
        description="Seconds × 2^n between MLflow retries.",
    )

    user: str = Field(
        default="unknown",
        validation_alias=AliasChoices("KFP_MLFLOW_USER", "USER", "LOGNAME"),
        description="Who a rollback or manual promotion is recorded as (the audit trail).",
    )

    # --- Training defaults (become pipeline parameter defaults) ------------------------------
    data: str = Field(
        default="sklearn://diabetes",
        description="Dataset: a CSV/Parquet path, s3:// or minio:// URI, or sklearn://<name>.",
    )
    target: str = Field(default="disease_progression", description="Target column.")
    task: TaskType | None = Field(
        default=None, description="regression or classification; inferred from the target."
    )
    model_name: str = Field(default="kfp-mlflow-model", description="Registered model name.")
    primary_metric: str | None = Field(
        default=None, description="Metric that picks the winner (rmse / roc_auc by task)."
    )
    thresholds: list[str] | None = Field(
        default=None,
        description='Quality gate, e.g. ["r2>=0.3", "rmse<=60"]; task default when unset.',
    )
    min_improvement: float = Field(
        default=0.0,
        ge=0.0,
        description="How much better than @champion (in metric units) a challenger must be.",
    )
    on_schema_change: Literal["block", "promote"] = Field(
        default="block",
        description="When @champion cannot score the challenger's test rows: keep it or promote.",
    )
    seed: int = Field(default=42, description="Seed for the split and every estimator.")
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0, description="Held-out fraction.")
    min_rows: int = Field(default=30, ge=4, description="Fewest rows a dataset may have.")

    # --- Local runs ---------------------------------------------------------------------------
    work_dir: Path = Field(
        default=Path(".kfp-mlflow"),
        description="Local runs: pipeline root, local MLflow store and server log.",
    )
    status_dir: Path | None = Field(
        default=None,
        description="Local runs: where each task writes its status record (set by the runner).",
    )
    local_server_port: int = Field(
        default=0, ge=0, le=65535, description="Local MLflow server port; 0 picks a free one."
    )
    task_timeout: float = Field(
        default=4 * 3600.0,
        gt=0,
        description="Seconds any task may run before it is ended (locally SIGTERM, then SIGKILL; "
        "on a cluster the pod's activeDeadlineSeconds), unless its component sets its own.",
    )
    spark_master: str = Field(
        default="local[2]",
        description="Spark master of the Spark backend's session (a task's own, local by default).",
    )
    spark_java_options: str = Field(
        default="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        description="JVM options of the Spark driver: a task's JVM lives for seconds to minutes; "
        "the C1 compiler only and the serial GC start it about a third faster.",
    )
    cache_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("KFP_MLFLOW_CACHE_DIR", "XDG_CACHE_HOME"),
        description="Where downloaded tools are cached (kubectl); default ~/.cache.",
    )
    warm_tasks: bool = Field(
        default=True,
        description="Local runs: fork tasks from a process that has imported kfp, MLflow and "
        "scikit-learn once, instead of a fresh interpreter per task.",
    )

    # --- Object storage (s3:// and minio:// dataset URIs) -------------------------------------
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
        description="S3 endpoint for s3:// / minio:// inputs (SeaweedFS, MinIO, AWS).",
    )
    s3_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=_alias("AWS_ACCESS_KEY_ID"),
        description="S3 credential for s3:// / minio:// inputs (masked).",
    )
    s3_secret_key: SecretStr | None = Field(
        default=None,
        validation_alias=_alias("AWS_SECRET_ACCESS_KEY"),
        description="S3 credential for s3:// / minio:// inputs (masked).",
    )

    # --- Component image and cluster ----------------------------------------------------------
    image: str = Field(
        default=f"ghcr.io/kfp-mlflow/kfp-mlflow:{__version__}",
        description="Component image the compiled pipeline names (pinned tag, never latest).",
    )
    git_commit: str | None = Field(
        default=None,
        description="Commit the code was built from (baked into the image; found by `run`).",
    )
    runner: Literal["local", "docker", "cluster"] = Field(
        default="cluster",
        description="Where steps run; `run` sets local or docker. Recorded as a tag.",
    )
    lock_sha256: str | None = Field(
        default=None,
        description="sha256 of the dependency lock the image was built from (baked into it).",
    )
    image_digest: str | None = Field(
        default=None,
        description="Id (sha256) of the image a task runs in, when known (set by `run --runner "
        "docker`). Recorded with the image reference.",
    )
    kfp_ui_url: str | None = Field(
        default=None,
        description="KFP UI base URL, used to link MLflow runs back to KFP runs.",
    )

    # --- KFP API (submit / schedule) ----------------------------------------------------------
    kfp_host: str | None = Field(
        default=None,
        description="KFP API endpoint (e.g. http://localhost:8080 through a port-forward). Unset "
        "inside a pod: the in-cluster service ml-pipeline.<namespace>:8888.",
    )
    kfp_namespace: str | None = Field(
        default=None, description="Kubernetes namespace / profile for multi-user KFP."
    )
    kfp_token: SecretStr | None = Field(
        default=None, description="Bearer token for the KFP API (never printed)."
    )
    kfp_token_file: Path | None = Field(
        default=None,
        description="File holding the bearer token, re-read on every request (projected tokens "
        "rotate). Unset in a pod with no host: the service-account token.",
    )
    kfp_ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the KFP API's TLS certificate."
    )
    kfp_experiment: str = Field(
        default="kfp-mlflow", description="KFP experiment that holds submitted runs."
    )
    kfp_mlflow_plugin: bool = Field(
        default=False,
        description="KFP's own MLflow integration is enabled on the cluster: send the MLflow "
        "experiment as the run's plugins_input.",
    )
    kfp_service_account: str | None = Field(
        default=None, description="Kubernetes service account the KFP runs use."
    )
    kfp_request_timeout: int = Field(
        default=30, ge=1, le=600, description="Seconds before one KFP API call gives up."
    )
    # mlflow_ui_url (MLflow section above) is also the link written into KFP run descriptions.


# Variables a task process needs that are not settings: one BLAS/OpenMP thread per task keeps two
# parallel tasks off each other's cores; telemetry has nowhere to go from a closed network.
_TASK_PROCESS_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
}


def task_environment(
    settings: Settings,
    *,
    tracking_uri: str,
    runner: Literal["local", "docker"],
    status_dir: Path | None = None,
) -> dict[str, str]:
    """Everything a local task receives, as environment variables: the one route by which
    settings reach a task, whether it runs as a subprocess or in a container.

    Read back by :func:`get_settings` inside the task. Secrets travel here too (a task needs
    them to log and to read ``s3://`` data); they are never written anywhere else.
    """
    values: dict[str, str | None] = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_EXPERIMENT_NAME": settings.experiment_name,
        "MLFLOW_TRACKING_USERNAME": _secret(settings.tracking_username),
        "MLFLOW_TRACKING_PASSWORD": _secret(settings.tracking_password),
        "MLFLOW_TRACKING_TOKEN": _secret(settings.tracking_token),
        "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url,
        "AWS_ACCESS_KEY_ID": _secret(settings.s3_access_key),
        "AWS_SECRET_ACCESS_KEY": _secret(settings.s3_secret_key),
        f"{ENV_PREFIX}MLFLOW_UI_URL": settings.mlflow_ui_url,
        f"{ENV_PREFIX}RUNNER": runner,
        f"{ENV_PREFIX}STATUS_DIR": str(status_dir) if status_dir else None,
        f"{ENV_PREFIX}GIT_COMMIT": settings.git_commit,
        f"{ENV_PREFIX}IMAGE_DIGEST": settings.image_digest,
        f"{ENV_PREFIX}TASK_TIMEOUT": f"{settings.task_timeout:g}",
        f"{ENV_PREFIX}USER": settings.user,
        **mlflow_http_environment(settings),
    }
    return {**_TASK_PROCESS_ENV, **{k: v for k, v in values.items() if v is not None}}


def child_environment(overrides: dict[str, str]) -> dict[str, str]:
    """The environment of a process this one starts: its own (PATH, HOME, PYTHONPATH...) with
    ``overrides`` on top. Read here, the module that reads the environment; never written."""
    import os

    return {**os.environ, **overrides}


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def mlflow_http_environment(settings: Settings) -> dict[str, str]:
    """The request bounds as the MLflow client reads them (it reads only its own variables)."""
    return {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": f"{settings.tracking_request_timeout:g}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.tracking_max_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": f"{settings.tracking_backoff_factor:g}",
    }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process; tests clear the cache with ``get_settings.cache_clear()``."""
    return Settings()


# --- Variables other libraries read only from the environment ----------------------------------
# MLflow takes its request bounds and, in some APIs (``models:/`` resolution,
# ``mlflow.models.evaluate``), its tracking URI from the process environment only; Spark's
# launcher its bind address. This is the one place that writes them.


def apply_mlflow_request_bounds(settings: Settings) -> None:
    """Make the MLflow client of this process use ``settings``' request bounds."""
    import os

    os.environ.update(mlflow_http_environment(settings))


@contextmanager
def mlflow_process_uri(uri: str | None) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URI set to ``uri`` for the block, then put
    back (``mlflow.set_tracking_uri`` would leave it behind). ``None`` changes nothing."""
    import os

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    if uri:
        os.environ.update(dict.fromkeys(names, uri))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def spark_local_ip() -> None:
    """Spark's launcher binds to this machine's loopback (no resolvable hostname needed)."""
    import os

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
