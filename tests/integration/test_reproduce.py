"""`kfp-mlflow reproduce`: a registered version rebuilt from its content-addressed snapshot
gives exactly the registered model's outputs, even after the source file changed; a differing
environment is named."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import run_local
from tests.integration.conftest import client, tracked_environment

LINEAR = [{"name": "linear", "family": "linear", "params": {"alpha": 1.0}}]


def _cli(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )  # fmt: skip


def test_reproduce_from_the_snapshot_exactly_and_name_a_changed_package(mlflow_server, tmp_path):
    rng = np.random.default_rng(9)
    source = tmp_path / "prices.csv"
    frame = pd.DataFrame({"size": rng.uniform(20, 200, 300), "rooms": rng.integers(1, 6, 300)})
    frame["price"] = frame["size"] * 3 + frame["rooms"] * 10 + rng.normal(0, 5, 300)
    frame.to_csv(source, index=False)
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        trained = run_local(
            None,
            {"data": str(source), "target": "price", "candidates": LINEAR},
            get_settings(),
        )
        assert trained.succeeded, trained.error
        mlflow = client()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_MLFLOW_")}
        env |= names
    name = names["KFP_MLFLOW_MODEL_NAME"]
    version = mlflow.get_model_version(name, "1")
    snapshot = version.tags["kfp_mlflow.snapshot_uri"]
    assert snapshot.startswith("runs:/") and snapshot.endswith("/snapshot/data.parquet")
    # The data changes after the fact: the version was trained on the snapshot, not the file.
    frame.assign(price=frame["price"] * 2).to_csv(source, index=False)

    exact = _cli("reproduce", f"models:/{name}/1", env=env, cwd=tmp_path)
    assert exact.returncode == 0, exact.stdout + exact.stderr
    assert "environment: identical" in exact.stdout
    assert "reproduced exactly: max abs diff 0 over 60 test rows" in exact.stdout
    runs = mlflow.search_runs(
        [mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"]).experiment_id],
        filter_string=f"tags.`kfp_mlflow.reproduces` = 'models:/{name}/1'",
    )
    assert len(runs) == 1
    assert runs[0].data.metrics["max_abs_diff"] == 0.0
    # Identical content is stored once: the reproduction reused the snapshot.
    assert runs[0].data.tags["kfp_mlflow.environment_differs"] == "none"

    mlflow.set_model_version_tag(name, "1", "kfp_mlflow.version.scikit-learn", "0.0.1")
    named = _cli("reproduce", f"models:/{name}/1", env=env, cwd=tmp_path)
    assert named.returncode == 0, named.stdout + named.stderr
    assert "environment: differs: scikit-learn 0.0.1 registered," in named.stdout


def test_a_version_without_a_recipe_is_refused(mlflow_server, tmp_path):
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        mlflow = client()
        mlflow.create_registered_model(names["KFP_MLFLOW_MODEL_NAME"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_MLFLOW_")} | names
    result = _cli("reproduce", f"models:/{names['KFP_MLFLOW_MODEL_NAME']}/7", env=env, cwd=tmp_path)
    assert result.returncode == 4  # no such version: MLflow refuses, one line
    assert "Traceback" not in result.stderr
    bad = _cli("reproduce", "models:/x@champion", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert "is not models:/<name>/<version>" in bad.stderr
