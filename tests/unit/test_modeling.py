"""Candidates and the scikit-learn pipelines built from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.evaluation import score
from kfp_mlflow.exceptions import ConfigError
from kfp_mlflow.modeling import (
    FAMILIES,
    SKOPS_TRUSTED_TYPES,
    Candidate,
    as_model_input,
    build_pipeline,
    fit,
)
from kfp_mlflow.search_space import default_candidates


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
        ("linear", "must be a mapping"),
    ],
)
def test_bad_candidates_are_config_errors(raw, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Candidate.parse(raw)


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_learns_mixed_columns(task, family):
    features, labels = _data(task)
    candidate = Candidate(name=family, family=family, params={})
    model = build_pipeline(candidate, task, seed=0, features=as_model_input(features))
    fit(model, candidate, as_model_input(features), labels)
    metrics = score(model, as_model_input(features), labels, task).metrics
    if task == "regression":
        assert metrics["r2"] > 0.8
    else:
        assert metrics["accuracy"] > 0.8
        assert 0.5 < metrics["roc_auc"] <= 1.0


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_saved_models_need_only_the_reviewed_skops_types(task, family):
    import skops.io

    features, labels = _data(task, rows=40)
    candidate = Candidate(name=family, family=family, params={})
    model = build_pipeline(candidate, task, seed=0, features=as_model_input(features))
    fit(model, candidate, as_model_input(features), labels)
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    assert set(untrusted) <= set(SKOPS_TRUSTED_TYPES)
    assert "numpy.dtype" in untrusted  # the check sees real types, not an empty list


def test_unknown_category_at_prediction_time_is_tolerated():
    features, labels = _data("regression")
    candidate = Candidate(name="l", family="linear", params={})
    model = build_pipeline(candidate, "regression", 0, as_model_input(features))
    fit(model, candidate, as_model_input(features), labels)
    unseen = as_model_input(features.head(3).assign(city="lima"))
    assert len(model.predict(unseen)) == 3


def test_rejected_hyperparameter_names_the_candidate():
    features, labels = _data("regression")
    candidate = Candidate(name="deep", family="random_forest", params={"max_depth": -1})
    model = build_pipeline(candidate, "regression", 0, as_model_input(features))
    with pytest.raises(ConfigError, match="'deep'"):
        fit(model, candidate, as_model_input(features), labels)
    with pytest.raises(ConfigError, match=r"'bogus'.*does not accept"):
        build_pipeline(
            Candidate(name="bogus", family="linear", params={"nope": 1}), "regression", 0, features
        )


def test_default_search_space_is_valid_and_fresh():
    first, second = default_candidates(), default_candidates()
    assert first == second
    first[0]["params"]["alpha"] = 99
    assert second[0]["params"]["alpha"] != 99
    assert {Candidate.parse(c).family for c in second} == set(FAMILIES)
