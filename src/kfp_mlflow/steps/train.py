"""Fit one candidate of the search space and save it as an MLflow model directory."""

from __future__ import annotations

import time
from typing import Any

from kfp_mlflow.core.contracts import DatasetInfo, ModelInfo
from kfp_mlflow.data.datasets import as_model_input
from kfp_mlflow.models.logged_models import ModelArtifact, publish_model
from kfp_mlflow.models.sklearn_backend import (
    Candidate,
    resolved_params,
    save_model,
    train_model,
)
from kfp_mlflow.tracking.runs import TaskRun, mlflow_errors

#: Where each train task records its resolved candidate on the pipeline's parent run.
CANDIDATES_ARTIFACT_DIR = "candidates"


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
    family = spec.spec
    frame = pd.read_parquet(train_path)
    chosen = resolved_params(spec, dataset.task, dataset.seed)
    # What the family's large-data caps set (e.g. a forest's per-tree sample) is logged: the
    # run says its fit was not quite the one the candidate alone describes.
    capped = family.large_data_params(chosen, len(frame))
    run.log_params(
        {"candidate": spec.name, "family": spec.family, "seed": dataset.seed, "task": dataset.task}
        | {f"model.{k}": v for k, v in spec.params.items()}
        | {f"effective.{k}": v for k, v in capped.items()}
    )
    _record_candidate(run, spec, dataset, family.estimator_path(dataset.task), chosen | capped)
    rows = len(frame)
    labels = frame.pop(dataset.target)
    if dataset.task == "classification":
        labels = labels.astype(str)
    features = as_model_input(frame)
    del frame  # one copy of the rows in memory while fitting, not two
    started = time.perf_counter()
    fitted = train_model(spec, dataset.task, dataset.seed, features, labels)
    run.log_metrics({"fit_seconds": time.perf_counter() - started, "train_rows": rows})
    save_model(spec, fitted, features, model.path)
    return publish_model(
        model,
        candidate=spec.name,
        task=dataset.task,
        family=spec.family,
        params=spec.params,
        seed=dataset.seed,
        run=run,
    )


def _record_candidate(
    run: TaskRun, spec: Candidate, dataset: DatasetInfo, estimator: str, effective: dict[str, Any]
) -> None:
    """The resolved candidate, as a file of the parent run: together, the train tasks leave
    the search space that actually ran (``candidates/<name>.json``) where the pipeline's
    results are, whether the candidates came from a file, ``--arg`` or the defaults. Each
    task writes its own file, so parallel tasks never write the same one."""
    record = {
        "name": spec.name,
        "family": spec.family,
        "params": spec.params,
        "preprocessing": spec.spec.preprocessing,
        "task": dataset.task,
        "estimator": estimator,
        "effective_params": {
            k: v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)
            for k, v in effective.items()
        },
        "train_run_id": run.run_id,
    }
    with mlflow_errors("record the candidate on the parent run"):
        run.client.log_dict(
            run.parent_run_id, record, f"{CANDIDATES_ARTIFACT_DIR}/{spec.name}.json"
        )
