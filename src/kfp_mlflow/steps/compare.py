"""Compare a rebuilt model with the registered one on the same test split (``reproduce``)."""

from __future__ import annotations

from typing import Any

from kfp_mlflow.core.contracts import DatasetInfo, Reproduction
from kfp_mlflow.core.tag_schema import TAG_REPRODUCES, VERSION_PREFIX
from kfp_mlflow.data.datasets import as_model_input
from kfp_mlflow.steps.evaluate import load_scorer
from kfp_mlflow.tracking.provenance import package_versions
from kfp_mlflow.tracking.runs import TaskRun, mlflow_errors


def run_compare(
    run: TaskRun,
    *,
    model_name: str,
    version: str,
    rebuilt_dir: str,
    test_path: str,
    dataset: DatasetInfo,
) -> Reproduction:
    """Max absolute difference of the two models' outputs (class probabilities for
    classifiers that have them, predictions otherwise) and which packages differ."""
    import numpy as np
    import pandas as pd

    uri = f"models:/{model_name}/{version}"
    with mlflow_errors(f"read {uri}"):
        registered_version = run.client.get_model_version(model_name, version)
    run.set_tags({TAG_REPRODUCES: uri})
    features = as_model_input(pd.read_parquet(test_path).drop(columns=[dataset.target]))
    with mlflow_errors(f"load {uri}"):
        registered = load_scorer(uri)
    rebuilt = load_scorer(rebuilt_dir)
    mine, theirs = _outputs(rebuilt, features), _outputs(registered, features)
    if mine.dtype.kind in "fiu" and theirs.dtype.kind in "fiu":
        difference = float(np.max(np.abs(mine.astype(float) - theirs.astype(float))))
    else:  # labels: the share of rows that disagree
        difference = float(np.mean(mine.astype(str) != theirs.astype(str)))
    recorded = {
        key.removeprefix(VERSION_PREFIX): value
        for key, value in registered_version.tags.items()
        if key.startswith(VERSION_PREFIX)
    }
    here = package_versions()
    differs = {
        name: f"{recorded[name]} registered, {here.get(name, 'absent')} here"
        for name in sorted(recorded)
        if here.get(name) != recorded[name]
    }
    run.log_metrics({"max_abs_diff": difference, "rows": len(features)})
    run.set_tags({"kfp_mlflow.environment_differs": ", ".join(differs) or "none"})
    return Reproduction(
        model_name=model_name,
        version=version,
        max_abs_diff=difference,
        rows=len(features),
        compared="probabilities" if hasattr(rebuilt, "predict_proba") else "predictions",
        environment_differs=differs,
        run_id=run.run_id,
    )


def _outputs(model: Any, features: Any) -> Any:
    import numpy as np

    if hasattr(model, "predict_proba") and hasattr(model, "classes_"):
        return np.asarray(model.predict_proba(features))
    return np.asarray(model.predict(features))
