"""Bad input ends with one clear message, runs marked FAILED, and no model version registered."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.net import free_port
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import run_local
from tests.integration.conftest import client, tracked_environment


def _frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"x": rng.normal(size=rows), "label": rng.choice(["a", "b"], rows)})


def _write(tmp_path, frame: pd.DataFrame) -> str:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


CASES = {
    "missing file": (lambda tmp: "/nonexistent/data.csv", {}, "file not found: /nonexistent/data.csv"),
    "unknown target": (lambda tmp: _write(tmp, _frame()), {"target": "price"}, "column 'price' is not in the dataset"),
    "constant target": (lambda tmp: _write(tmp, _frame().assign(y=1.0)), {"target": "y"}, "column 'y' is constant"),
    "all-null target": (lambda tmp: _write(tmp, _frame().assign(y=np.nan)), {"target": "y"}, "column 'y' is empty"),
    "too few rows": (lambda tmp: _write(tmp, _frame(12).assign(y=np.arange(12.0))), {"target": "y"}, "12 rows with a 'y' value, fewer than the 30 required"),
    "text target for regression": (lambda tmp: _write(tmp, _frame()), {"target": "label", "task": "regression"}, "column 'label' is not numeric"),
    "header-only csv": (lambda tmp: _write(tmp, _frame().head(0)), {"target": "label"}, "has no rows (only the header"),
    "a class with one row": (lambda tmp: _write(tmp, _frame().assign(label=["a"] * 59 + ["rare"])), {"target": "label"}, "'rare'"),
    "infinite feature": (lambda tmp: _write(tmp, _frame().assign(x=[np.inf] + [0.5] * 59)), {"target": "label"}, "infinite values (±inf) in 'x'"),
    "continuous target as classes": (lambda tmp: _write(tmp, _frame().assign(y=np.linspace(0, 1, 60))), {"target": "y", "task": "classification"}, "it looks continuous"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_cleanly(case, mlflow_server, tmp_path):
    make_data, arguments, message = CASES[case]
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        result = run_local(None, {"data": make_data(tmp_path), **arguments}, get_settings())
        assert not result.succeeded
        error = result.error
        assert "step preprocess failed" in str(error)
        assert message in str(error)
        assert error.exit_code == 3  # the step's own DataError, not a generic pipeline failure
        mlflow = client()
        experiment = mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"])
        runs = mlflow.search_runs([experiment.experiment_id])
        assert runs, "the failure must be recorded in MLflow"
        assert {r.info.status for r in runs} == {"FAILED"}  # parent and preprocess, none RUNNING
        parent = next(r for r in runs if r.data.tags["kfp_mlflow.role"] == "pipeline")
        assert message in parent.data.tags["kfp_mlflow.error"]
        assert parent.data.tags["kfp_mlflow.final_state"] == "FAILED"
        assert not mlflow.search_registered_models(f"name = '{names['KFP_MLFLOW_MODEL_NAME']}'")


def _cli(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}


def test_unreachable_tracking_server_fails_before_anything_runs(tmp_path):
    env = _clean_env() | {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    result = _cli("run", env=env, cwd=tmp_path)
    assert result.returncode == 4
    assert "MLflow tracking server http://127.0.0.1:" in result.stderr
    assert "is unreachable" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / ".kfp-mlflow" / "runs").exists()


def test_cli_exit_code_and_one_line_for_bad_data(mlflow_server, tmp_path):
    env = _clean_env() | {"MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_EXPERIMENT_NAME": "cli-bad"}
    result = _cli(
        "run", "--data", _write(tmp_path, _frame()), "--target", "nope", env=env, cwd=tmp_path
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "error: step preprocess failed" in result.stderr
    assert "column 'nope' is not in the dataset" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_local_file_is_refused_by_the_cli(tmp_path):
    result = _cli("run", "--data", "missing.csv", env=_clean_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "--data: file not found: missing.csv" in result.stderr
