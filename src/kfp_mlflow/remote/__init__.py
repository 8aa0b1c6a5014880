"""Talk to a running Kubeflow Pipelines: submit, schedule and follow runs, linked to MLflow.

For notebooks::

    from kfp_mlflow.remote import KfpConnection, submit_pipeline, follow_run

    conn = KfpConnection.from_settings(host="http://localhost:8080")
    result = submit_pipeline(conn, params={"seed": 7}, mlflow_experiment="churn")
    follow_run(result.run_id, conn)
"""

from kfp_mlflow.remote.connection import KfpConnection, KfpSession
from kfp_mlflow.remote.errors import (
    KfpAuthError,
    KfpNotFoundError,
    KfpRejectedError,
    KfpUnreachableError,
)
from kfp_mlflow.remote.follow import Backoff, RunStatus, TaskStatus, follow_run, get_run_status
from kfp_mlflow.remote.links import kfp_run_url, mlflow_experiment_url, mlflow_runs_search_url
from kfp_mlflow.remote.package import PipelinePackage, version_name
from kfp_mlflow.remote.schedule import (
    ScheduleInfo,
    create_schedule,
    delete_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
)
from kfp_mlflow.remote.submit import SubmitResult, submit_pipeline

__all__ = [
    "Backoff",
    "KfpAuthError",
    "KfpConnection",
    "KfpNotFoundError",
    "KfpRejectedError",
    "KfpSession",
    "KfpUnreachableError",
    "PipelinePackage",
    "RunStatus",
    "ScheduleInfo",
    "SubmitResult",
    "TaskStatus",
    "create_schedule",
    "delete_schedule",
    "follow_run",
    "get_run_status",
    "kfp_run_url",
    "list_schedules",
    "mlflow_experiment_url",
    "mlflow_runs_search_url",
    "pause_schedule",
    "resume_schedule",
    "submit_pipeline",
    "version_name",
]
