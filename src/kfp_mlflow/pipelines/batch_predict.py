"""Batch prediction: resolve `models:/<name>@<alias>` (or a version) once → score a dataset in
bounded-memory chunks → Parquet predictions, drift against the training data, all in MLflow."""

from typing import Any

from kfp import dsl

from kfp_mlflow.components import exit_handler
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.dsl.factory import component

PIPELINE_NAME = "kfp-mlflow-batch-predict"


def build_batch_predict_pipeline(settings: Settings | None = None) -> Any:
    from kfp_mlflow.components.batch_predict import batch_predict, resolve_model

    settings = settings or get_settings()
    resolve = component(resolve_model, base_image=settings.image)
    predict = component(batch_predict, base_image=settings.image)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Score a dataset with one registered model version; predictions, "
        "throughput and drift tracked in MLflow.",
    )
    def batch_predict_pipeline(
        data: str,
        model_name: str = settings.model_name,
        alias: str = "champion",
        version: str = "",
        id_columns: list = [],  # noqa: B006  (KFP defaults are values, never mutated)
        drift_threshold: float = 0.2,
        chunk_rows: int = 100_000,
    ) -> None:
        with exit_handler(image=settings.image):
            resolved = resolve(model_name=model_name, version=version, alias=alias)
            predict(
                model_name=model_name,
                version=resolved.output,
                requested_version=version,
                alias=alias,
                data=data,
                id_columns=id_columns,
                drift_threshold=drift_threshold,
                chunk_rows=chunk_rows,
            )

    return batch_predict_pipeline
