"""Candidates, and the scikit-learn pipelines built from them for every installed family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.data.datasets import as_model_input
from kfp_mlflow.models.families import registered_families
from kfp_mlflow.models.metrics import score
from kfp_mlflow.models.sklearn_backend import (
    SKOPS_TRUSTED_TYPES,
    Candidate,
    check_candidate,
    resolved_params,
    train_model,
)
from kfp_mlflow.steps.search_space import default_candidates

# Every family the scikit-learn backend fits (Spark ones are in tests/integration).
SKLEARN_FAMILIES = sorted(
    name
    for name, family in registered_families().items()
    if family.backend == "kfp_mlflow.models.sklearn_backend:SKLEARN"
)


def _data(task: str, rows: int = 120) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(1)
    features = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "city": rng.choice(["paris", "oslo", None], size=rows),
            "flag": rng.choice([True, False], size=rows),
        }
    )
    signal = features["x"] * 3 + (features["city"] == "oslo") * 2
    if task == "regression":
        return features, signal + rng.normal(scale=0.1, size=rows)
    return features, pd.Series(np.where(signal > 0.5, "high", "low"))


def _fit(family: str, task: str, rows: int = 120, **params):
    features, labels = _data(task, rows)
    candidate = Candidate(name=family, family=family, params=params)
    return train_model(candidate, task, 0, as_model_input(features), labels), features, labels


def test_parse_restores_integers_lost_in_protobuf():
    candidate = Candidate.parse(
        {"family": "random_forest", "params": {"n_estimators": 10.0, "x": 0.5}}
    )
    assert candidate.params == {"n_estimators": 10, "x": 0.5}
    assert isinstance(candidate.params["n_estimators"], int)
    assert candidate.name == "random_forest"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"family": "svm"}, "unknown family 'svm'"),
        ({"family": "linear", "params": [1]}, "params of"),
        ({"params": {}}, "has no family"),
        ("linear", "must be a mapping"),
        ({"family": "no_such_module:Model"}, "cannot import 'no_such_module'"),
        ({"family": "sklearn.linear_model:Nope"}, "has no 'Nope'"),
    ],
)
def test_bad_candidates_are_config_errors(raw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Candidate.parse(raw)


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("family", SKLEARN_FAMILIES)
def test_every_family_learns_mixed_columns(task, family):
    model, features, labels = _fit(family, task)
    metrics = score(model, as_model_input(features), labels, task).metrics
    if task == "regression":
        assert metrics["r2"] > 0.8
    else:
        assert metrics["accuracy"] > 0.8
        assert 0.5 < metrics["roc_auc"] <= 1.0
        assert list(model.classes_) == ["high", "low"]  # labels, not codes, whatever the family


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("family", SKLEARN_FAMILIES)
def test_saved_models_need_only_the_reviewed_skops_types(task, family):
    import skops.io

    model, _, _ = _fit(family, task, rows=40)
    untrusted = set(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    reviewed = set(SKOPS_TRUSTED_TYPES) | set(registered_families()[family].trusted_types)
    assert untrusted <= reviewed
    assert "numpy.dtype" in untrusted  # the check sees real types, not an empty list


def test_unknown_category_at_prediction_time_is_tolerated():
    model, features, _ = _fit("linear", "regression")
    unseen = as_model_input(features.head(3).assign(city="lima"))
    assert len(model.predict(unseen)) == 3


def test_aliases_and_defaults_are_declared_by_the_family():
    linear = Candidate(name="l", family="linear", params={"alpha": 4.0})
    assert resolved_params(linear, "regression", 7) == {"alpha": 4.0, "random_state": 7}
    assert resolved_params(linear, "classification", 7) == {
        "C": 0.25,
        "max_iter": 2000,
        "class_weight": "balanced",
        "random_state": 7,
    }
    spark = Candidate(name="s", family="spark_random_forest", params={"max_depth": 5})
    assert resolved_params(spark, "regression", 3) == {"maxDepth": 5, "seed": 3}


def test_rejected_hyperparameter_names_the_candidate():
    with pytest.raises(ConfigError, match=r"'bogus'.*Ridge does not accept: nope"):
        check_candidate(
            Candidate(name="bogus", family="linear", params={"nope": 1}), "regression", 0
        )
    with pytest.raises(ConfigError, match=r"'deep': .*max_depth"):
        check_candidate(
            Candidate(name="deep", family="random_forest", params={"max_depth": -1}),
            "regression",
            0,
        )


def test_default_search_space_is_valid_and_fresh():
    first, second = default_candidates(), default_candidates()
    assert first == second
    first[0]["params"]["alpha"] = 99
    assert second[0]["params"]["alpha"] != 99
    assert {Candidate.parse(c).family for c in second} == {
        "linear",
        "random_forest",
        "gradient_boosting",
    }
    for raw in second:
        for task in ("regression", "classification"):
            check_candidate(Candidate.parse(raw), task, 0)
