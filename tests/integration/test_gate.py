"""The quality gate means something: every candidate must beat a model that learned nothing,
a multiclass target has its metrics, and when nothing passes the run fails with exit code 8."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import run_local
from tests.integration.conftest import client, tracked_environment

# Two families are enough to show the gate; each candidate is two tasks.
TWO = [
    {"name": "linear", "family": "linear", "params": {"alpha": 1.0}},
    {"name": "boosting", "family": "gradient_boosting", "params": {"max_iter": 50}},
]


def _run(frame: pd.DataFrame, target: str, mlflow_server, tmp_path, **arguments):  # type: ignore[no-untyped-def]
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        result = run_local(None, {"data": str(path), "target": target, **arguments}, get_settings())
        return result, names, client()


def test_imbalanced_target_never_crowns_a_majority_class_model(mlflow_server, tmp_path):
    rng = np.random.default_rng(11)
    rows = 3000
    frame = pd.DataFrame(
        {
            "noise": rng.normal(size=rows),
            "region": rng.choice(["n", "s", "e", "w"], size=rows),
            "weak": rng.normal(size=rows),
        }
    )
    # 1% positives, faintly tied to `weak`: probabilities rank a little, labels stay "no".
    frame["fraud"] = np.where(rng.random(rows) < 0.005 + 0.01 * (frame["weak"] > 1.5), "yes", "no")
    result, names, mlflow = _run(frame, "fraud", mlflow_server, tmp_path, candidates=TWO)
    versions = mlflow.search_model_versions(f"name = '{names['KFP_MLFLOW_MODEL_NAME']}'")
    if result.succeeded:  # a champion exists only if it beats the prior on macro-F1 as well
        champion = mlflow.get_model_version_by_alias(names["KFP_MLFLOW_MODEL_NAME"], "champion")
        assert float(champion.tags["kfp_mlflow.metric.f1"]) > 0.5
    else:
        assert result.error.exit_code == 8
        assert "no candidate passed the quality gate" in str(result.error)
        assert "does not beat the baseline on f1" in str(result.error) or "fails" in str(
            result.error
        )
        assert not versions


def test_nothing_passes_exit_8_nothing_registered(mlflow_server, tmp_path):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})  # no signal
    result, names, mlflow = _run(frame, "y", mlflow_server, tmp_path, candidates=TWO)
    assert not result.succeeded
    assert result.error.exit_code == 8
    assert "step register failed: no candidate passed the quality gate" in str(result.error)
    assert "baseline" in str(result.error) or "fails r2>=0.1" in str(result.error)
    assert not mlflow.search_registered_models(f"name = '{names['KFP_MLFLOW_MODEL_NAME']}'")
    experiment = mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"])
    statuses = {r.info.status for r in mlflow.search_runs([experiment.experiment_id])}
    assert "RUNNING" not in statuses


def test_thirty_classes_get_one_vs_rest_auc_and_a_champion(mlflow_server, tmp_path):
    rng = np.random.default_rng(2)
    classes = 30
    label = np.repeat(np.arange(classes), 20)
    frame = pd.DataFrame(
        {
            "signal": label + rng.normal(0, 0.3, size=label.size),
            "noise": rng.normal(size=label.size),
        }
    )
    frame["species"] = [f"s{value}" for value in label]
    result, _names, _ = _run(
        frame, "species", mlflow_server, tmp_path,
        candidates=[{"name": "linear", "family": "linear", "params": {"alpha": 0.01}}],
    )  # fmt: skip
    assert result.succeeded, result.error
    metrics = result.decision.candidates[0]["metrics"]
    assert "roc_auc" in metrics
    assert result.decision.promoted
