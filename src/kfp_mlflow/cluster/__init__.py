"""Cluster-side artifacts: Kubernetes-native pipeline resources and the offline kubectl."""

from kfp_mlflow.cluster.kubectl import kubectl_path
from kfp_mlflow.cluster.pipeline_resources import (
    render_pipeline_resources,
    version_name,
    write_pipeline_resources,
)

__all__ = [
    "kubectl_path",
    "render_pipeline_resources",
    "version_name",
    "write_pipeline_resources",
]
