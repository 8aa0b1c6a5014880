"""Spark ML families in one process, on a real local[2] SparkSession: what the pipeline test
does not reach — class order, missing values, unseen categories, a regression model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.data.datasets import as_model_input
from kfp_mlflow.models.families import scorer_for
from kfp_mlflow.models.metrics import score
from kfp_mlflow.models.sklearn_backend import Candidate, save_model, train_model


@pytest.fixture(scope="module")
def spark_session():
    from kfp_mlflow.models.spark_backend import local_session

    session = local_session()
    yield session
    session.stop()


def _frame(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "city": rng.choice(["paris", "oslo", "rome", None], size=rows),
            "empty": [None] * rows,  # all missing: schema inference alone would fail
        }
    )
    frame.loc[::9, "x"] = np.nan
    return frame


def test_classifier_probabilities_follow_sorted_labels(spark_session, tmp_path):
    features = _frame()
    signal = features["x"].fillna(0) + (features["city"] == "oslo") * 1.5
    # "zebra" is the most frequent label, so Spark indexes it 0 while it sorts last.
    labels = pd.Series(np.select([signal > 1.0, signal < -0.8], ["ant", "bee"], "zebra"))
    candidate = Candidate.parse({"family": "spark_random_forest", "params": {"n_estimators": 30}})
    model = train_model(candidate, "classification", 0, as_model_input(features), labels)
    save_model(candidate, model, as_model_input(features), str(tmp_path / "clf"))
    scorer = scorer_for(str(tmp_path / "clf"))
    assert scorer.classes_ == ["ant", "bee", "zebra"]
    unseen = as_model_input(features.assign(city=features["city"].replace("rome", "lima")))
    metrics = score(scorer, unseen, labels, "classification").metrics
    assert metrics["accuracy"] > 0.8
    assert metrics["roc_auc"] > 0.9  # a swapped column order would score far below 0.5
    probabilities = scorer.predict_proba(unseen)
    predicted = scorer.predict(unseen)
    assert probabilities.shape == (400, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    top = np.array(scorer.classes_)[probabilities.argmax(axis=1)]
    assert (top == predicted).mean() > 0.99


def test_regressor_predicts_through_pyfunc(spark_session, tmp_path):
    import mlflow.pyfunc

    features = _frame()
    target = features["x"].fillna(0) * 3 + (features["city"] == "rome") * 2
    candidate = Candidate.parse({"family": "spark_gbt", "params": {"max_iter": 20}})
    model = train_model(candidate, "regression", 0, as_model_input(features), target)
    save_model(candidate, model, as_model_input(features), str(tmp_path / "reg"))
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "reg"))
    assert loaded.metadata.flavors.keys() >= {"spark", "python_function"}
    predictions = np.asarray(loaded.predict(as_model_input(features)))
    assert 1 - ((predictions - target) ** 2).mean() / target.var() > 0.8
    assert not hasattr(scorer_for(str(tmp_path / "reg")), "predict_proba")
