"""kfp-mlflow: reproducible ML training on Kubeflow Pipelines with MLflow as the system of record.

The public API is listed in ``__all__``. Names are imported on first use so that a pipeline
step, which imports this package, does not pay for kfp or MLflow imports it does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from kfp_mlflow._version import __version__

_EXPORTS = {
    # Building pipelines of your own
    "component": "kfp_mlflow.factory",
    "exit_handler": "kfp_mlflow.factory",
    "TrackedComponent": "kfp_mlflow.factory",
    "current_run": "kfp_mlflow.tracking",
    "current_kfp": "kfp_mlflow.tracking",
    "TaskRun": "kfp_mlflow.tracking",
    "KfpContext": "kfp_mlflow.tracking",
    "publish_model": "kfp_mlflow.logged_models",
    "save_model": "kfp_mlflow.logged_models",
    "read_split": "kfp_mlflow.datasets",
    "SplitRows": "kfp_mlflow.datasets",
    "column_encoder": "kfp_mlflow.modeling",
    "load_components": "kfp_mlflow.components",
    "Components": "kfp_mlflow.components",
    # Contracts between steps
    "DatasetInfo": "kfp_mlflow.contracts",
    "ModelInfo": "kfp_mlflow.contracts",
    "EvaluationInfo": "kfp_mlflow.contracts",
    "Decision": "kfp_mlflow.contracts",
    "ContractError": "kfp_mlflow.exceptions",
    "MetricSpec": "kfp_mlflow.evaluation",
    # Running
    "load_pipeline": "kfp_mlflow.pipeline_loading",
    "check_arguments": "kfp_mlflow.validation",
    "LocalRun": "kfp_mlflow.runner",
    "StepFailedError": "kfp_mlflow.exceptions",
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
    # After the registry
    "export_onnx": "kfp_mlflow.onnx_export",
}

__all__ = [
    "Components",
    "ConfigError",
    "ContractError",
    "DataError",
    "DatasetInfo",
    "Decision",
    "EvaluationInfo",
    "KfpContext",
    "KfpMlflowError",
    "LocalMlflowServer",
    "LocalRun",
    "MetricSpec",
    "ModelInfo",
    "PipelineRunError",
    "Policy",
    "PromotionError",
    "Settings",
    "SplitRows",
    "StepFailedError",
    "TaskRun",
    "TrackedComponent",
    "TrackingError",
    "__version__",
    "build_training_pipeline",
    "check_arguments",
    "column_encoder",
    "compile_pipeline",
    "component",
    "current_kfp",
    "current_run",
    "evaluate",
    "exit_handler",
    "export_onnx",
    "get_settings",
    "load_components",
    "load_pipeline",
    "preprocess",
    "promote",
    "publish_model",
    "read_split",
    "register",
    "run_local",
    "save_model",
    "train",
]


# The reference components, built for the configured image (``KFP_MLFLOW_IMAGE``).
_COMPONENTS = ("preprocess", "train", "evaluate", "register")


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    if name in _COMPONENTS:
        from kfp_mlflow.components import load_components
        from kfp_mlflow.settings import get_settings

        return getattr(load_components(get_settings().image), name)
    raise AttributeError(f"module 'kfp_mlflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
