"""XGBoost and LightGBM versions exported to ONNX through onnxmltools, and a Spark ML version
that cannot be — against a real `mlflow server`, real skl2onnx/onnxmltools/onnxruntime and a
real local SparkSession.

Each version is saved by the family's own backend (exactly what the train step writes: skops
with the reviewed allowlist, or the mlflow.spark flavor) and registered on its own run, so the
export reads it back from the server as it would a pipeline's champion. Small data and few
trees keep the module fast; the default 300 rounds are covered by tests/unit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.models.onnx import (
    ARTIFACT_PATH,
    METRIC_LABEL_MISMATCHES,
    METRIC_MAX_ABS_DIFF,
    METRIC_MAX_REL_DIFF,
    METRIC_PASSED,
    REGRESSION_RELATIVE_TOLERANCE,
    export_onnx,
    predict_onnx,
)
from kfp_mlflow.models.sklearn_backend import Candidate, save_model, train_model
from kfp_mlflow.tracking.runs import tracking_client
from tests.integration.test_serving import export_onnx_line


@pytest.fixture
def server(tracked):
    """The session's MLflow server, a unique model name, MLFLOW_TRACKING_URI set for the test."""
    return {"names": tracked, "settings": get_settings()}


def _data(task: str) -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_diabetes

    features, target = load_diabetes(return_X_y=True, as_frame=True, scaled=False)
    features = features.copy()
    features.loc[::9, "bmi"] = np.nan  # the tree encoding's missing-value indicator, exported
    if task == "regression":
        return features, target.to_numpy()
    return features, np.where(target > target.median(), "high", "low")


def _register(
    settings: Settings, name: str, family: str, task: str, params: dict[str, Any]
) -> pd.DataFrame:
    """Train on 353 rows, register as ``name`` v1; returns the 89 test rows (target included)."""
    features, labels = _data(task)
    candidate = Candidate(family, family, params)
    model = train_model(candidate, task, 0, features[:353], labels[:353])
    client = tracking_client(settings)
    experiment_id = client.create_experiment(name)
    run = client.create_run(experiment_id)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(candidate, model, features[:353], f"{tmp}/model")
        client.log_artifacts(run.info.run_id, f"{tmp}/model", "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    return features[353:].assign(target=labels[353:])


CASES = [
    ("xgboost", "regression"),
    ("xgboost", "classification"),
    ("lightgbm", "regression"),
    ("lightgbm", "classification"),
]


@pytest.mark.parametrize(("family", "task"), CASES)
def test_a_booster_version_exports_with_parity_on_its_run(server, tmp_path, family, task):
    import mlflow.artifacts
    import mlflow.pyfunc

    settings = server["settings"]
    name = f"{server['names']['KFP_MLFLOW_MODEL_NAME']}-{family}-{task}"
    test = _register(settings, name, family, task, {"n_estimators": 40})
    test.to_parquet(tmp_path / "test.parquet")

    result = export_onnx(name, "1", test_data=tmp_path / "test.parquet", settings=settings)

    assert result.exported and result.passed, result.summary()
    assert result.task == task and result.rows == 89
    client = tracking_client(settings)
    run = client.get_run(result.run_id)
    metrics = run.data.metrics
    assert metrics[METRIC_PASSED] == 1.0
    assert metrics[METRIC_MAX_ABS_DIFF] == pytest.approx(result.max_abs_diff)
    assert metrics[METRIC_MAX_REL_DIFF] < REGRESSION_RELATIVE_TOLERANCE
    assert metrics[METRIC_LABEL_MISMATCHES] == 0.0
    logged = [item.path for item in client.list_artifacts(result.run_id, ARTIFACT_PATH)]
    assert logged == [f"{ARTIFACT_PATH}/{name}-v1.onnx"]
    assert client.get_model_version(name, "1").tags["kfp_mlflow.onnx"] == f"{name}-v1.onnx"
    # The file read back from the server predicts like the registered MLflow model.
    features = test.drop(columns=["target"])
    onnx_file = Path(mlflow.artifacts.download_artifacts(result.artifact_uri))
    onnx = predict_onnx(onnx_file.read_bytes(), features)
    original = np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(features))
    if task == "classification":
        assert set(original) == {"high", "low"}
        assert list(onnx.astype(str)) == list(original.astype(str))
    else:
        allowed = 1e-4 + REGRESSION_RELATIVE_TOLERANCE * np.abs(original)
        assert np.all(np.abs(onnx - original) <= allowed)


def test_a_spark_version_says_it_cannot_be_exported_in_one_line(server, tmp_path):
    """A Spark ML pipeline (mlflow.spark flavor) has no ONNX path here: the command says so in
    one line, exits 0 and logs nothing on the run."""
    settings = server["settings"]
    name = f"{server['names']['KFP_MLFLOW_MODEL_NAME']}-spark"
    test = _register(settings, name, "spark_linear", "regression", {})
    test.to_parquet(tmp_path / "test.parquet")

    line = export_onnx_line(name, tmp_path / "test.parquet")

    assert f"models:/{name}/1" in line
    assert "not exported:" in line and "has no scikit-learn flavor (saved as spark)" in line
    client = tracking_client(settings)
    run_id = client.get_model_version(name, "1").run_id
    assert client.list_artifacts(run_id, ARTIFACT_PATH) == []
    assert METRIC_PASSED not in client.get_run(run_id).data.metrics
