"""Fit one candidate of the search space and save it as an MLflow model directory."""

from __future__ import annotations

import time
from typing import Any

from kfp_mlflow.contracts import DatasetInfo, ModelInfo
from kfp_mlflow.logged_models import ModelArtifact, publish_model
from kfp_mlflow.modeling import (
    SKOPS_TRUSTED_TYPES,
    Candidate,
    as_model_input,
    build_pipeline,
    fit,
)
from kfp_mlflow.provenance import pip_requirements
from kfp_mlflow.tracking import TaskRun

_SIGNATURE_ROWS = 50
_EXAMPLE_ROWS = 5


def run_train(
    run: TaskRun,
    *,
    candidate: dict[str, Any],
    dataset: DatasetInfo,
    train_path: str,
    model: ModelArtifact,
) -> ModelInfo:
    """Train ``candidate`` on the train split, save it at ``model.path``, log it, stamp it."""
    import pandas as pd

    spec = Candidate.parse(candidate)
    run.log_params(
        {"candidate": spec.name, "family": spec.family, "seed": dataset.seed, "task": dataset.task}
        | {f"model.{k}": v for k, v in spec.params.items()}
    )
    frame = pd.read_parquet(train_path)
    features = as_model_input(frame.drop(columns=[dataset.target]))
    labels = frame[dataset.target]
    if dataset.task == "classification":
        labels = labels.astype(str)
    estimator = build_pipeline(spec, dataset.task, dataset.seed, features)
    started = time.perf_counter()
    fit(estimator, spec, features, labels)
    run.log_metrics({"fit_seconds": time.perf_counter() - started, "train_rows": len(frame)})
    _save(estimator, features, model.path)
    return publish_model(
        model,
        candidate=spec.name,
        task=dataset.task,
        family=spec.family,
        params=spec.params,
        seed=dataset.seed,
        run=run,
    )


def _save(model: Any, features: Any, model_dir: str) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    sample = features.head(_SIGNATURE_ROWS)
    mlflow.sklearn.save_model(
        model,
        model_dir,
        # skops (MLflow's default format) loads only safe types plus this reviewed list.
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        signature=infer_signature(sample, model.predict(sample)),
        input_example=features.head(_EXAMPLE_ROWS),
        pip_requirements=pip_requirements(),
    )
