"""The train step logs what a family's large-data cap set, against a real `mlflow server`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.contracts import DatasetInfo
from kfp_mlflow.steps.train import run_train
from kfp_mlflow.tracking.runs import KfpContext, task_run
from tests.integration.conftest import client, tracked_environment

CAP = 50_000  # the random_forest family's RowCap (tests/unit/test_large_data.py pins it)


@pytest.mark.parametrize(("rows", "logged"), [(CAP + 10_000, CAP / (CAP + 10_000)), (2_000, None)])
def test_train_logs_the_effective_sample_cap(mlflow_server, tmp_path, rows, logged):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=rows), "city": rng.choice(["oslo", "lima", None], size=rows)}
    )
    frame["y"] = frame["x"] * 2 + rng.normal(scale=0.1, size=rows)
    train_path = tmp_path / "train.parquet"
    frame.to_parquet(train_path, index=False)
    dataset = DatasetInfo(
        role="train", rows=rows, target="y", task="regression",
        columns={c: str(t) for c, t in frame.dtypes.items()}, digest="d" * 64,
        source=str(train_path), seed=3,
    )  # fmt: skip
    candidate = {"name": "rf", "family": "random_forest", "params": {"n_estimators": 2}}
    with tracked_environment(mlflow_server, tmp_path / "work"):
        kfp = KfpContext(run_id=uuid.uuid4().hex[:8], task_name="train")
        with task_run(step="train", kfp=kfp) as run:
            run_train(
                run, candidate=candidate, dataset=dataset, train_path=str(train_path),
                model=SimpleNamespace(path=str(tmp_path / "model"), metadata={}),
            )  # fmt: skip
        mlflow = client()
        params = mlflow.get_run(run.run_id).data.params
        saved = mlflow.download_artifacts(run.parent_run_id, "candidates/rf.json", str(tmp_path))
        recorded = json.loads(Path(saved).read_text())
    assert params["model.n_estimators"] == "2"
    effective = recorded["effective_params"]
    if logged is None:
        assert "effective.max_samples" not in params
        assert "max_samples" not in effective
    else:
        assert float(params["effective.max_samples"]) == pytest.approx(logged, rel=1e-5)
        assert effective["max_samples"] == pytest.approx(logged, rel=1e-5)
