"""kfp-mlflow: reproducible ML training on Kubeflow Pipelines with MLflow as the system of record."""

from kfp_mlflow._version import __version__

__all__ = ["__version__"]
