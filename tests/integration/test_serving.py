"""A trained, registered model served by MLflow's scoring server, rendered for KServe and
exported to ONNX — against a real `mlflow server`, a real scoring server and real onnxruntime."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from kfp_mlflow.core.net import free_port, is_healthy
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import run_local
from kfp_mlflow.models.onnx import (
    METRIC_MAX_ABS_DIFF,
    METRIC_PASSED,
    REGRESSION_TOLERANCE,
    export_onnx,
    predict_onnx,
)
from kfp_mlflow.tracking.runs import tracking_client
from tests.integration.conftest import tracked_environment

SCHEMA = Path(__file__).parents[1] / "manifests/schemas/serving.kserve.io_inferenceservices.yaml"
TARGET = "disease_progression"
LINEAR = {"candidates": [{"name": "linear", "family": "linear", "params": {"alpha": 1.0}}]}


@pytest.fixture(scope="module")
def champion(mlflow_server, tmp_path_factory):
    """One linear model trained by the pipeline and promoted to @champion (v1)."""
    work = tmp_path_factory.mktemp("serving")
    with tracked_environment(mlflow_server, work) as names:
        settings = get_settings()
        result = run_local(None, LINEAR, settings)
        assert result.succeeded, result.log_path.read_text()[-3000:]
        assert result.decision.champion_version == "1"
        (test_split,) = result.run_dir.glob("*/preprocess/test_data")
    return {"name": names["KFP_MLFLOW_MODEL_NAME"], "settings": settings, "test": test_split}


@pytest.fixture
def tracking(champion, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion["settings"].tracking_uri)
    return champion


def _features(test_split: Path) -> pd.DataFrame:
    return pd.read_parquet(test_split).drop(columns=[TARGET])


def _expected(name: str, features: pd.DataFrame) -> np.ndarray:
    import mlflow.pyfunc

    return np.asarray(mlflow.pyfunc.load_model(f"models:/{name}/1").predict(features))


def _cli(*args: str) -> list[str]:
    # The console script's entry point, run by this interpreter on this checkout's package.
    return [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args]


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(
    process: subprocess.Popen[str], lines: queue.Queue[str], prefix: str, timeout: float
) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                raise AssertionError(f"exited with {process.returncode}: {seen}") from None
            continue
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no line starting {prefix!r} within {timeout}s: {seen}")


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_serve_answers_a_request_built_from_the_test_split(tracking):
    name, port = tracking["name"], free_port()
    features = _features(tracking["test"])
    process = subprocess.Popen(
        _cli("serve", "--model-name", name, "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    try:
        lines = _lines(process)
        seen = _wait_for(process, lines, "POST ", timeout=120)
        assert f"serve models:/{name}/1 (@champion → v1" in "".join(seen)
        assert seen[-1].startswith(f"POST http://127.0.0.1:{port}/invocations")
        body = {
            "dataframe_split": {
                "columns": list(features.columns),
                "data": features.to_numpy().tolist(),
            }
        }
        answer = _post(f"http://127.0.0.1:{port}/invocations", body)
        predictions = np.asarray(answer["predictions"], dtype=float)
        assert predictions.shape == (len(features),)
        np.testing.assert_allclose(predictions, _expected(name, features), rtol=1e-12)
    finally:
        # SIGTERM, as a supervisor sends it: the command stops the scoring server (its own
        # process group, so not signalled itself) before exiting, as on Ctrl-C.
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 130
    assert not is_healthy(f"http://127.0.0.1:{port}", timeout=1.0)


def test_serve_names_an_unknown_alias_in_one_line(tracking):
    name = tracking["name"]
    done = subprocess.run(
        _cli("serve", "--model-name", name, "--alias", "nope"),
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"models:/{name}@nope does not exist" in done.stderr


def test_render_serving_points_at_the_resolved_version(tracking, tmp_path):
    from typer.testing import CliRunner

    from kfp_mlflow.cli import app

    name = tracking["name"]
    destination = "s3://mlflow/artifacts"
    outcome = CliRunner().invoke(
        app,
        ["render-serving", "--model-name", name, "-o", str(tmp_path),
         "--artifacts-destination", destination],
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    text = (tmp_path / "inferenceservice.yaml").read_text()
    obj = yaml.safe_load(text)
    jsonschema.validate(obj, yaml.safe_load(SCHEMA.read_text()))
    location = tracking_client(tracking["settings"]).get_model_version_download_uri(name, "1")
    assert location.startswith("mlflow-artifacts:/")  # proxied, as on the cluster
    expected = f"{destination}/{location.removeprefix('mlflow-artifacts:/')}"
    assert obj["spec"]["predictor"]["model"]["storageUri"] == expected
    assert "@champion" not in json.dumps(obj)  # the alias is resolved, never deployed
    (line,) = [line for line in text.splitlines() if "storageUri:" in line]
    assert line.endswith(f"# models:/{name}/1 (@champion when rendered)")


def test_export_onnx_records_parity_and_onnxruntime_agrees(tracking):
    import mlflow.artifacts

    name = tracking["name"]
    result = export_onnx(name, "1", test_data=tracking["test"], settings=tracking["settings"])
    assert result.exported and result.passed, result.summary()
    assert result.task == "regression"
    assert 0 <= result.max_abs_diff <= REGRESSION_TOLERANCE
    run = tracking_client(tracking["settings"]).get_run(result.run_id)
    assert run.data.metrics[METRIC_MAX_ABS_DIFF] == pytest.approx(result.max_abs_diff)
    assert run.data.metrics[METRIC_PASSED] == 1.0
    # The logged file itself, read back from the server, predicts like the MLflow model.
    onnx_file = Path(mlflow.artifacts.download_artifacts(result.artifact_uri))
    features = _features(tracking["test"])
    onnx = predict_onnx(onnx_file.read_bytes(), features)
    assert np.max(np.abs(onnx - _expected(name, features))) <= REGRESSION_TOLERANCE


def test_a_family_skl2onnx_cannot_convert_says_so(tracking, tmp_path):
    """A pipeline holding our DatetimeFeatures step (used for timestamp columns) has no ONNX
    converter: the command says so in one line and exits 0 instead of crashing."""
    import mlflow
    import mlflow.sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from kfp_mlflow.data.features import datetime_features

    frame = pd.DataFrame(
        {"when": pd.date_range("2026-01-01", periods=40, freq="D"), "x": np.arange(40.0)}
    )
    model = Pipeline(
        [
            ("encode", ColumnTransformer([("dates", datetime_features(), ["when"])])),
            ("model", Ridge()),
        ]
    ).fit(frame, np.arange(40.0))
    name = f"{tracking['name']}-dates"
    client = tracking_client(tracking["settings"])
    # An explicit experiment, not mlflow.set_experiment: no global state leaks into other tests.
    experiment_id = client.create_experiment(name)
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.sklearn.log_model(
            model, name="model", serialization_format="cloudpickle", registered_model_name=name
        )
    frame.to_parquet(tmp_path / "test.parquet")
    line = export_onnx_line(name, tmp_path / "test.parquet")
    assert f"models:/{name}/1" in line
    assert "not exported: skl2onnx cannot convert" in line
    assert "DatetimeFeatures" in line


def export_onnx_line(name: str, test_data: Path) -> str:
    """`kfp-mlflow export-onnx` of version 1 through the CLI: exit 0 and its one line."""
    from typer.testing import CliRunner

    from kfp_mlflow.cli import app

    outcome = CliRunner().invoke(
        app,
        ["export-onnx", "--model-name", name, "--version", "1", "--test-data", str(test_data)],
    )
    assert outcome.exit_code == 0, outcome.output
    (line,) = outcome.output.strip().splitlines()
    return str(line)
