"""kfp-mlflow: reproducible ML training on Kubeflow Pipelines with MLflow as the system of record.

The public API is listed in ``__all__``. Names are imported on first use so that a pipeline
step, which imports this package, does not pay for kfp or MLflow imports it does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from kfp_mlflow._version import __version__

_EXPORTS = {
    "Settings": "kfp_mlflow.settings",
    "get_settings": "kfp_mlflow.settings",
    "KfpMlflowError": "kfp_mlflow.exceptions",
    "ConfigError": "kfp_mlflow.exceptions",
    "DataError": "kfp_mlflow.exceptions",
    "TrackingError": "kfp_mlflow.exceptions",
    "PromotionError": "kfp_mlflow.exceptions",
    "PipelineRunError": "kfp_mlflow.exceptions",
    "Policy": "kfp_mlflow.policy",
    "build_training_pipeline": "kfp_mlflow.pipelines.training",
    "compile_pipeline": "kfp_mlflow.compiling",
    "run_local": "kfp_mlflow.runner",
    "LocalMlflowServer": "kfp_mlflow.local_server",
    "promote": "kfp_mlflow.promotion",
}

__all__ = [
    "ConfigError",
    "DataError",
    "KfpMlflowError",
    "LocalMlflowServer",
    "PipelineRunError",
    "Policy",
    "PromotionError",
    "Settings",
    "TrackingError",
    "__version__",
    "build_training_pipeline",
    "compile_pipeline",
    "get_settings",
    "promote",
    "run_local",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kfp_mlflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
