"""One pipeline run where XGBoost, LightGBM and Spark ML candidates compete with scikit-learn
ones, driven by a search-space file; the champion is registered and every model loads as pyfunc.

Real parts throughout: kfp.local tasks, a real MLflow server, a local[2] SparkSession in the
train and evaluate tasks (Java 17), the packages of the optional extras.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import run_local
from kfp_mlflow.steps.search_space import load_search_space
from tests.integration.conftest import client, tracked_environment

SEARCH_SPACE = """
metric: roc_auc
thresholds: ["roc_auc>=0.8"]
candidates:
  - name: spark-rf
    family: spark_random_forest
    params: {max_depth: 5, n_estimators: 20}
  - family: linear
    params: {alpha: 1.0}
  - name: xgb
    family: xgboost
    params: {n_estimators: 60, max_depth: 3}
  - name: lgbm
    family: lightgbm
    params: {n_estimators: 60}
"""
FAMILIES = {
    "linear": "linear",
    "xgb": "xgboost",
    "lgbm": "lightgbm",
    "spark-rf": "spark_random_forest",
}
FLAVORS = {"linear": "sklearn", "xgb": "sklearn", "lgbm": "sklearn", "spark-rf": "spark"}


@pytest.fixture(scope="module")
def families_run(mlflow_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("families")
    space_file = work / "space.yaml"
    space_file.write_text(SEARCH_SPACE)
    arguments = {
        "data": "sklearn://breast_cancer",
        "target": "diagnosis",
        **load_search_space(space_file).pipeline_arguments(),
    }
    with tracked_environment(mlflow_server, work) as names:
        started = time.perf_counter()
        result = run_local(None, arguments, get_settings())
        seconds = time.perf_counter() - started
        yield result, names, client(), seconds
    # Loading the Spark model here started a JVM in the test process: end it with the module.
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()


def test_every_family_is_scored_on_the_same_metric_and_the_best_wins(families_run):
    result, _, _, seconds = families_run
    assert result.succeeded, result.log_path.read_text()[-3000:]
    decision = result.decision
    assert decision.metric == "roc_auc"
    by_name = {c["candidate"]: c for c in decision.candidates}
    assert set(by_name) == set(FAMILIES)
    for name, family in FAMILIES.items():
        assert by_name[name]["family"] == family
        # Spark included: probabilities reach evaluate, so the probabilistic metrics exist.
        assert 0.8 < by_name[name]["metrics"]["roc_auc"] <= 1.0
        assert by_name[name]["metrics"]["log_loss"] < 0.7
    best = max(
        decision.candidates, key=lambda c: (c["metrics"]["roc_auc"], -c["metrics"]["log_loss"])
    )
    assert decision.winner == best["candidate"]
    assert decision.promoted is True
    print(f"pipeline with Spark, XGBoost, LightGBM candidates: {seconds:.1f}s")


def test_models_are_saved_in_their_safe_flavor_and_load_as_pyfunc(families_run, monkeypatch):
    import mlflow.pyfunc

    result, names, tracking, _ = families_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", names["MLFLOW_TRACKING_URI"])
    test_split = next(result.run_dir.glob("*/preprocess/test_data"))
    frame = pd.read_parquet(test_split)
    rows, labels = frame.drop(columns=["diagnosis"]).head(40), frame["diagnosis"].head(40)
    trains = {
        t.outputs["model"]["metadata"]["candidate"]: t for t in result.tasks if t.step == "train"
    }
    for name, flavor in FLAVORS.items():
        info = trains[name].outputs["model"]["metadata"]
        assert info["flavor"] == flavor
        model = mlflow.pyfunc.load_model(f"models:/{info['model_id']}")
        predicted = np.asarray(model.predict(rows)).astype(str)
        assert set(predicted) <= {str(v) for v in set(frame["diagnosis"])}
        assert (predicted == labels.astype(str).to_numpy()).mean() > 0.8
        if flavor == "sklearn":  # skops: the saved list of trusted types is the family's
            assert model.metadata.flavors["sklearn"]["serialization_format"] == "skops"
    champion = tracking.get_model_version_by_alias(names["KFP_MLFLOW_MODEL_NAME"], "champion")
    assert champion.tags["kfp_mlflow.candidate"] == result.decision.winner
    loaded = mlflow.pyfunc.load_model(f"models:/{names['KFP_MLFLOW_MODEL_NAME']}@champion")
    assert len(loaded.predict(rows)) == 40


def test_resolved_candidates_are_on_the_parent_run(families_run):
    _, names, mlflow, _ = families_run
    experiment = mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"])
    parent = next(
        r
        for r in mlflow.search_runs([experiment.experiment_id])
        if r.data.tags.get("kfp_mlflow.role") == "pipeline"
    )
    files = {a.path for a in mlflow.list_artifacts(parent.info.run_id, "candidates")}
    assert files == {f"candidates/{name}.json" for name in FAMILIES}
    spark = json.loads(
        Path(mlflow.download_artifacts(parent.info.run_id, "candidates/spark-rf.json")).read_text()
    )
    assert spark["estimator"] == "pyspark.ml.classification:RandomForestClassifier"
    assert spark["effective_params"] == {"maxDepth": 5, "numTrees": 20, "seed": 42}
    linear = json.loads(
        Path(mlflow.download_artifacts(parent.info.run_id, "candidates/linear.json")).read_text()
    )
    assert linear["effective_params"]["C"] == 1.0  # the alias, resolved for classification
