"""Fit one candidate; save it as an MLflow model directory and log it as an MLflow LoggedModel."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kfp_mlflow.modeling import (
    SKOPS_TRUSTED_TYPES,
    Candidate,
    as_model_input,
    build_pipeline,
    fit,
)
from kfp_mlflow.provenance import pip_requirements
from kfp_mlflow.settings import Settings, get_settings
from kfp_mlflow.tracking import KfpContext, mlflow_errors, task_run

_SIGNATURE_ROWS = 50
_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_id: str
    metadata: dict[str, Any]


def run_train(
    *,
    candidate: dict[str, Any],
    train_path: str,
    target: str,
    task: str,
    seed: int,
    parent_run_id: str,
    kfp: KfpContext,
    model_dir: str,
    settings: Settings | None = None,
) -> TrainResult:
    """Train ``candidate`` on the train split and write the model to ``model_dir``."""
    import pandas as pd

    settings = settings or get_settings()
    spec = Candidate.parse(candidate)
    with task_run(
        step="train",
        parent_run_id=parent_run_id,
        kfp=kfp,
        run_name=f"train-{spec.name}",
        settings=settings,
    ) as run:
        run.log_params(
            {"candidate": spec.name, "family": spec.family, "seed": seed, "task": task}
            | {f"model.{k}": v for k, v in spec.params.items()}
        )
        run.set_tags({"kfp_mlflow.candidate": spec.name})
        frame = pd.read_parquet(train_path)
        features = as_model_input(frame.drop(columns=[target]))
        labels = frame[target].astype(str) if task == "classification" else frame[target]
        model = build_pipeline(spec, task, seed, features)
        started = time.perf_counter()
        fit(model, spec, features, labels)
        fit_seconds = time.perf_counter() - started
        run.log_metrics({"fit_seconds": fit_seconds, "train_rows": len(frame)})
        _save(model, features, model_dir)
        model_id = _log_model(run.client, run.experiment_id, run.run_id, spec, model_dir)
        run.set_tags({"kfp_mlflow.model_id": model_id})
    return TrainResult(
        run_id=run.run_id,
        model_id=model_id,
        metadata={
            "candidate": spec.name,
            "family": spec.family,
            "params": spec.params,
            "task": task,
            "seed": seed,
            "mlflow_run_id": run.run_id,
            "mlflow_model_id": model_id,
            "fit_seconds": round(fit_seconds, 4),
        },
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


def _log_model(
    client: Any, experiment_id: str, run_id: str, spec: Candidate, model_dir: str
) -> str:
    """Upload the saved directory as a LoggedModel of the run (saved once, not twice)."""
    with mlflow_errors("log the trained model"):
        logged = client.create_logged_model(
            experiment_id,
            name=spec.name,
            source_run_id=run_id,
            params={k: str(v) for k, v in spec.params.items()},
            tags={"kfp_mlflow.family": spec.family},
            model_type="sklearn",
        )
        try:
            client.log_model_artifacts(logged.model_id, model_dir)
        except Exception:
            client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        client.finalize_logged_model(logged.model_id, "READY")
    return str(logged.model_id)
