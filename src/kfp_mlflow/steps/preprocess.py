"""Read and validate the dataset, split it deterministically, open the pipeline's parent run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_mlflow.datasets import read_dataset, schema, split, validate
from kfp_mlflow.settings import Settings, get_settings
from kfp_mlflow.tracking import (
    KfpContext,
    TaskRun,
    log_values,
    mlflow_errors,
    open_parent_run,
    task_run,
)


@dataclass(frozen=True)
class PreprocessResult:
    parent_run_id: str
    task: str
    digest: str
    train_metadata: dict[str, Any]
    test_metadata: dict[str, Any]


def run_preprocess(
    *,
    data: str,
    target: str,
    task: str,
    seed: int,
    test_size: float,
    min_rows: int,
    experiment_name: str,
    kfp: KfpContext,
    train_path: str,
    test_path: str,
    settings: Settings | None = None,
) -> PreprocessResult:
    """Write the train and test splits as Parquet; return their description."""
    settings = settings or get_settings()
    parent_run_id = open_parent_run(experiment_name, kfp, settings)
    with task_run(
        step="preprocess", parent_run_id=parent_run_id, kfp=kfp, settings=settings
    ) as run:
        pipeline_params = {
            "data": data,
            "target": target,
            "task": task or "auto",
            "seed": seed,
            "test_size": test_size,
            "min_rows": min_rows,
        }
        run.log_params(pipeline_params)
        frame = read_dataset(data, settings)
        resolved = validate(frame, target, task, min_rows)
        parts = split(frame, target, resolved, seed, test_size)
        for part, path in ((parts.train, train_path), (parts.test, test_path)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            part.to_parquet(path, index=False)
        _log_dataset(run, frame, data, target, parts.digest)
        run.log_metrics(
            {
                "rows": len(parts.train) + len(parts.test),
                "train_rows": len(parts.train),
                "test_rows": len(parts.test),
                "features": frame.shape[1] - 1,
            }
        )
        run.set_tags({"kfp_mlflow.dataset_digest": parts.digest, "kfp_mlflow.task_type": resolved})
        # The parent shows the pipeline's inputs at a glance.
        log_values(
            run.client,
            parent_run_id,
            params={**pipeline_params, "task": resolved},
            tags={"kfp_mlflow.dataset_digest": parts.digest, "kfp_mlflow.task_type": resolved},
        )

    def describe(role: str, rows: int) -> dict[str, Any]:
        return {
            "role": role,
            "rows": rows,
            "schema": schema(frame),
            "target": target,
            "task": resolved,
            "source": data,
            "digest": parts.digest,
            "seed": seed,
            "parent_run_id": parent_run_id,
        }

    return PreprocessResult(
        parent_run_id=parent_run_id,
        task=resolved,
        digest=parts.digest,
        train_metadata=describe("train", len(parts.train)),
        test_metadata=describe("test", len(parts.test)),
    )


def _log_dataset(run: TaskRun, frame: Any, uri: str, target: str, digest: str) -> None:
    """Record the dataset as an MLflow dataset input, with its source and our content digest."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    # MLflow resolves local paths and s3:// itself; other schemes are described by their URI.
    source: Any = uri.replace("minio://", "s3://", 1)
    if not (source.startswith("s3://") or "://" not in source):
        source = CodeDatasetSource(tags={"uri": uri})
    dataset = from_pandas(frame, source=source, targets=target, name=uri.rsplit("/", 1)[-1])
    with mlflow_errors("log the dataset input"):
        run.client.log_inputs(
            run.run_id,
            datasets=[
                DatasetInput(
                    dataset._to_mlflow_entity(),
                    tags=[
                        InputTag("mlflow.data.context", "source"),
                        InputTag("kfp_mlflow.digest", digest),
                    ],
                )
            ],
        )
