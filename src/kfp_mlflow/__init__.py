"""kfp-mlflow: reproducible ML training on Kubeflow Pipelines with MLflow as the system of record.

The public API is listed in ``__all__``. Names are imported on first use so that a pipeline
step, which imports this package, does not pay for kfp or MLflow imports it does not need.

Type checkers see the same names through the ``TYPE_CHECKING`` twins below, and nothing else:
the lazy ``__getattr__`` is hidden from them, so a user's ``mypy --strict`` reports a misspelt
name (``kfp_mlflow.run_lokal``) instead of accepting it as ``Any``. The twins and ``_EXPORTS``
must name the same modules (tests/unit/test_public_typing.py checks both ways).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from kfp_mlflow._version import __version__

if TYPE_CHECKING:
    from kfp_mlflow.components import Components, exit_handler, load_components
    from kfp_mlflow.core.contracts import DatasetInfo, Decision, EvaluationInfo, ModelInfo
    from kfp_mlflow.core.exceptions import (
        ConfigError,
        ContractError,
        DataError,
        KfpMlflowError,
        PipelineRunError,
        PromotionError,
        StepFailedError,
        TrackingError,
    )
    from kfp_mlflow.core.settings import Settings, get_settings
    from kfp_mlflow.data.datasets import SplitRows, read_split
    from kfp_mlflow.dsl.compiling import compile_pipeline
    from kfp_mlflow.dsl.factory import TrackedComponent, component, set_timeout
    from kfp_mlflow.dsl.pipeline_loading import load_pipeline
    from kfp_mlflow.local.runner import LocalRun, run_local
    from kfp_mlflow.local.server import LocalMlflowServer
    from kfp_mlflow.models.logged_models import publish_model, save_model
    from kfp_mlflow.models.metrics import MetricSpec
    from kfp_mlflow.models.onnx import export_onnx
    from kfp_mlflow.models.sklearn_backend import column_encoder
    from kfp_mlflow.pipelines.training import build_training_pipeline
    from kfp_mlflow.registry.policy import Policy
    from kfp_mlflow.registry.promotion import promote
    from kfp_mlflow.steps.validation import check_arguments
    from kfp_mlflow.tracking.runs import KfpContext, TaskRun, current_kfp, current_run

    # The reference components (built on first use for the configured image).
    preprocess: TrackedComponent
    train: TrackedComponent
    evaluate: TrackedComponent
    register: TrackedComponent

_EXPORTS = {
    # Building pipelines of your own
    "component": "kfp_mlflow.dsl.factory",
    "exit_handler": "kfp_mlflow.components",
    "set_timeout": "kfp_mlflow.dsl.factory",
    "TrackedComponent": "kfp_mlflow.dsl.factory",
    "current_run": "kfp_mlflow.tracking.runs",
    "current_kfp": "kfp_mlflow.tracking.runs",
    "TaskRun": "kfp_mlflow.tracking.runs",
    "KfpContext": "kfp_mlflow.tracking.runs",
    "publish_model": "kfp_mlflow.models.logged_models",
    "save_model": "kfp_mlflow.models.logged_models",
    "read_split": "kfp_mlflow.data.datasets",
    "SplitRows": "kfp_mlflow.data.datasets",
    "column_encoder": "kfp_mlflow.models.sklearn_backend",
    "load_components": "kfp_mlflow.components",
    "Components": "kfp_mlflow.components",
    # Contracts between steps
    "DatasetInfo": "kfp_mlflow.core.contracts",
    "ModelInfo": "kfp_mlflow.core.contracts",
    "EvaluationInfo": "kfp_mlflow.core.contracts",
    "Decision": "kfp_mlflow.core.contracts",
    "ContractError": "kfp_mlflow.core.exceptions",
    "MetricSpec": "kfp_mlflow.models.metrics",
    # Running
    "load_pipeline": "kfp_mlflow.dsl.pipeline_loading",
    "check_arguments": "kfp_mlflow.steps.validation",
    "LocalRun": "kfp_mlflow.local.runner",
    "StepFailedError": "kfp_mlflow.core.exceptions",
    "Settings": "kfp_mlflow.core.settings",
    "get_settings": "kfp_mlflow.core.settings",
    "KfpMlflowError": "kfp_mlflow.core.exceptions",
    "ConfigError": "kfp_mlflow.core.exceptions",
    "DataError": "kfp_mlflow.core.exceptions",
    "TrackingError": "kfp_mlflow.core.exceptions",
    "PromotionError": "kfp_mlflow.core.exceptions",
    "PipelineRunError": "kfp_mlflow.core.exceptions",
    "Policy": "kfp_mlflow.registry.policy",
    "build_training_pipeline": "kfp_mlflow.pipelines.training",
    "compile_pipeline": "kfp_mlflow.dsl.compiling",
    "run_local": "kfp_mlflow.local.runner",
    "LocalMlflowServer": "kfp_mlflow.local.server",
    "promote": "kfp_mlflow.registry.promotion",
    # After the registry
    "export_onnx": "kfp_mlflow.models.onnx",
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
    "set_timeout",
    "train",
]


# The reference components, built for the configured image (``KFP_MLFLOW_IMAGE``).
_COMPONENTS = ("preprocess", "train", "evaluate", "register")


if not TYPE_CHECKING:
    # Hidden from type checkers: a module ``__getattr__`` would make every attribute of the
    # package, misspelt ones included, type-check as ``Any``.

    def __getattr__(name: str) -> Any:
        if name in _EXPORTS:
            return getattr(import_module(_EXPORTS[name]), name)
        if name in _COMPONENTS:
            from kfp_mlflow.components import load_components
            from kfp_mlflow.core.settings import get_settings

            return getattr(load_components(get_settings().image), name)
        raise AttributeError(f"module 'kfp_mlflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
