"""Cluster-side settings applied to every task (kfp-kubernetes): config and credentials as env.

kfp-kubernetes has no pipeline-wide injection, so the training pipeline calls
:func:`configure_task` on every task. The compiled YAML carries only the *names* below (a
ConfigMap, Secrets and their keys), never a value; ``manifests/`` creates the objects and
``tests/manifests`` checks that both sides agree. ``kfp.local`` ignores all of it.
"""

from __future__ import annotations

from kfp.dsl import PipelineTask

# Non-secret environment the steps read (see kfp_mlflow.core.settings), in namespace `kubeflow`.
CONFIG_MAP_NAME = "kfp-mlflow-config"
CONFIG_ENV: tuple[str, ...] = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "KFP_MLFLOW_KFP_UI_URL",
    "AWS_ENDPOINT_URL",
)

# MLflow credentials, for a tracking server behind basic auth or a token. Optional: the kind
# demo's server has no auth and this Secret does not exist there; the pod starts all the same.
CREDENTIALS_SECRET_NAME = "kfp-mlflow-credentials"
CREDENTIALS_SECRET_ENV: dict[str, str] = {
    "MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN": "MLFLOW_TRACKING_TOKEN",
}

# KFP's own object-store secret (same namespace as the pipeline pods), so a step can read an
# s3:// or minio:// dataset from SeaweedFS. Models never need it: the MLflow server proxies
# artifacts (`--serve-artifacts`). Optional, so a cluster with another object store still works.
OBJECT_STORE_SECRET_NAME = "mlpipeline-minio-artifact"
OBJECT_STORE_SECRET_ENV: dict[str, str] = {
    "accesskey": "AWS_ACCESS_KEY_ID",
    "secretkey": "AWS_SECRET_ACCESS_KEY",
}

# `kind load`ed images exist only on the node: never try to pull them.
IMAGE_PULL_POLICY = "IfNotPresent"


def configure_task(task: PipelineTask) -> PipelineTask:
    """Apply the cluster settings every task needs. Ignored by kfp.local."""
    from kfp import kubernetes

    kubernetes.use_config_map_as_env(
        task,
        config_map_name=CONFIG_MAP_NAME,
        config_map_key_to_env={key: key for key in CONFIG_ENV},
        # Required: a task without a tracking URI would log nowhere; fail at pod start instead.
        optional=False,
    )
    kubernetes.use_secret_as_env(
        task,
        secret_name=CREDENTIALS_SECRET_NAME,
        secret_key_to_env=dict(CREDENTIALS_SECRET_ENV),
        optional=True,
    )
    kubernetes.use_secret_as_env(
        task,
        secret_name=OBJECT_STORE_SECRET_NAME,
        secret_key_to_env=dict(OBJECT_STORE_SECRET_ENV),
        optional=True,
    )
    kubernetes.set_image_pull_policy(task, IMAGE_PULL_POLICY)
    return task
