"""Read and validate the dataset and split it deterministically into train and test Parquet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kfp_mlflow.core.contracts import DatasetInfo
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.core.tag_schema import (
    INPUT_TAG_DIGEST,
    TAG_DATA_WARNINGS,
    TAG_DATASET_DIGEST,
    TAG_TASK_TYPE,
)
from kfp_mlflow.data.datasets import digest, prepare, read_dataset, schema, split
from kfp_mlflow.models.metrics import baseline_metrics
from kfp_mlflow.tracking.runs import TaskRun, log_values, mlflow_errors
from kfp_mlflow.tracking.snapshots import store_snapshot


@dataclass(frozen=True)
class PreprocessResult:
    train: DatasetInfo
    test: DatasetInfo


def run_preprocess(
    run: TaskRun,
    *,
    data: str,
    target: str,
    task: str,
    seed: int,
    test_size: float,
    min_rows: int,
    train_path: str,
    test_path: str,
    settings: Settings | None = None,
) -> PreprocessResult:
    """Write the train and test splits as Parquet; return the record each one carries."""
    settings = settings or get_settings()
    frame = read_dataset(data, settings)
    snapshot = store_snapshot(run, frame, digest(frame))
    prepared = prepare(frame, target, task, min_rows, test_size=test_size)
    frame, resolved = prepared.frame, prepared.task
    parts = split(frame, target, resolved, seed, test_size)
    warnings = prepared.profile.warnings()
    if warnings:  # e.g. an ID column dropped: visible on the run, never a silent change
        run.set_tags({TAG_DATA_WARNINGS: "; ".join(warnings)[:4000]})
    run.log_dict(prepared.profile.as_dict(), "data_profile.json")
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
    facts = {TAG_DATASET_DIGEST: parts.digest, TAG_TASK_TYPE: resolved}
    run.set_tags(facts)
    # The parent shows the pipeline's inputs at a glance.
    log_values(
        run.client,
        run.parent_run_id,
        params={"data": data, "target": target, "task": resolved, "seed": seed},
        tags=facts,
    )
    baseline = baseline_metrics(parts.train[target], parts.test[target], resolved)
    run.log_metrics({f"baseline_{name}": value for name, value in baseline.items()})
    train = DatasetInfo(
        role="train",
        rows=len(parts.train),
        target=target,
        task=resolved,
        columns=schema(frame),
        digest=parts.digest,
        source=data,
        seed=seed,
        test_size=test_size,
        snapshot_uri=snapshot,
        baseline=baseline,
    )
    return PreprocessResult(
        train=train, test=train.model_copy(update={"role": "test", "rows": len(parts.test)})
    )


def _log_dataset(run: TaskRun, frame: Any, uri: str, target: str, digest: str) -> None:
    """Record the dataset as an MLflow dataset input, with its source and our content digest."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Dataset, DatasetInput, InputTag

    # MLflow resolves local paths and s3:// itself; other schemes are described by their URI.
    source: Any = uri.replace("minio://", "s3://", 1)
    if urlparse(source).scheme not in ("", "file", "s3"):
        source = CodeDatasetSource(tags={"uri": uri})
    # MLflow infers the schema value by value in Python and digests by mapping type() over
    # every cell: 14 s at a million rows. The schema comes from a sample that keeps a missing
    # value of every column that has one (so optional columns stay optional), the digest is
    # our content digest (a prefix: MLflow stores at most 36 characters) and the profile counts
    # every row.
    sample = _schema_sample(frame)
    entity = from_pandas(
        sample, source=source, targets=target, name=uri.rsplit("/", 1)[-1], digest=digest[:32]
    )._to_mlflow_entity()
    entity = Dataset(
        name=entity.name,
        digest=entity.digest,
        source_type=entity.source_type,
        source=entity.source,
        schema=entity.schema,
        profile=json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)}),
    )
    with mlflow_errors("log the dataset input"):
        run.client.log_inputs(
            run.run_id,
            datasets=[
                DatasetInput(
                    entity,
                    tags=[
                        InputTag("mlflow.data.context", "source"),
                        InputTag(INPUT_TAG_DIGEST, digest),
                    ],
                )
            ],
        )


_SCHEMA_ROWS = 10_000


def _schema_sample(frame: Any) -> Any:
    """The first rows, plus the first row where each column with missing values has one."""
    if len(frame) <= _SCHEMA_ROWS:
        return frame
    missing = frame.isna()
    extra = [int(missing[c].to_numpy().argmax()) for c in frame.columns if missing[c].any()]
    rows = sorted({*range(_SCHEMA_ROWS), *extra})
    return frame.iloc[rows]
