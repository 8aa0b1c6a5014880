"""Every candidate family, as our modeling code builds it (imputation, scaling, one-hot encoding
of a text column, missing-value indicators for trees), converted by the real skl2onnx (and
onnxmltools for xgboost/lightgbm) and run by the real onnxruntime: the parity the export checks
holds for each family and task (the integration test covers the registry)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.models.onnx import (
    REGRESSION_RELATIVE_TOLERANCE,
    _compare,
    convert,
    predict_onnx,
)
from kfp_mlflow.models.sklearn_backend import Candidate, train_model


def _data(task: str, text: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    rows = 200
    features = pd.DataFrame({"x1": rng.normal(50, 10, rows), "x2": rng.normal(0, 1, rows)})
    features.loc[::17, "x2"] = np.nan  # exercised by the imputer
    signal = features["x1"] * 3 + features["x2"].fillna(0) * 5
    if text:
        features["colour"] = rng.choice(["red", "green", "blue"], rows)
    if task == "regression":
        return features, signal.to_numpy()
    return features, np.where(signal > signal.median(), "high", "low")


# Every built-in scikit-learn-API family, with its default hyperparameters (300 boosting rounds
# for xgboost/lightgbm): the tree families' ordinal encoding adds missing-value indicator
# columns, which the export's own SimpleImputer converter keeps.
FAMILIES = ("linear", "random_forest", "gradient_boosting", "xgboost", "lightgbm")


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_converts_with_parity(family: str, task: str) -> None:
    features, labels = _data(task)
    model = train_model(Candidate(family, family, {}), task, 0, features, labels)
    onnx_model, reason = convert(model, features)
    assert onnx_model is not None, reason
    predicted = predict_onnx(onnx_model.SerializeToString(), features)
    parity = _compare("models:/m/1", task, model.predict(features), predicted)
    assert parity.passed, parity
    if task == "classification":
        assert parity.label_mismatches == 0
    else:
        # float32 rounding only: a few float32 epsilons (1.2e-7) of the prediction.
        assert parity.max_rel_diff < REGRESSION_RELATIVE_TOLERANCE


@pytest.mark.parametrize("family", ["xgboost", "lightgbm", "random_forest"])
def test_missing_value_indicators_reach_the_trees(family: str) -> None:
    """Missingness that carries the signal: a graph without the indicator columns could not
    predict the rows where x2 is missing like the original does."""
    rng = np.random.default_rng(1)
    features = pd.DataFrame({"x1": rng.normal(0, 1, 300), "x2": rng.normal(0, 1, 300)})
    features.loc[::3, "x2"] = np.nan
    target = np.where(features["x2"].isna(), 100.0, 0.0) + features["x1"]
    model = train_model(Candidate(family, family, {}), "regression", 0, features, target)
    onnx_model, reason = convert(model, features)
    assert onnx_model is not None, reason
    graph_ops = {node.op_type for node in onnx_model.graph.node}
    assert {"IsNaN", "Gather"} <= graph_ops
    predicted = predict_onnx(onnx_model.SerializeToString(), features)
    assert _compare("m", "regression", model.predict(features), predicted).passed
    assert predicted[features["x2"].isna().to_numpy()].mean() > 50  # the signal survived


def test_a_text_column_is_refused_in_one_line() -> None:
    """skl2onnx converts a most-frequent imputer of text only when its missing value is a
    string; ours imputes NaN, so such a model is not exported, and the reason says why."""
    features, labels = _data("regression", text=True)
    model = train_model(Candidate("linear", "linear", {}), "regression", 0, features, labels)
    onnx_model, reason = convert(model, features)
    assert onnx_model is None
    assert reason.startswith("skl2onnx cannot convert Ridge: ")
    assert "missing values are string" in reason and "\n" not in reason


def test_a_different_prediction_fails_the_parity_check() -> None:
    """Guard: the comparison can fail."""
    assert not _compare("m", "regression", np.array([1.0, 2.0]), np.array([1.0, 2.001])).passed
    assert not _compare("m", "classification", np.array(["a", "b"]), np.array(["a", "a"])).passed
    assert not _compare("m", "regression", np.array([1.0]), np.array([np.nan])).passed


def test_the_tolerance_admits_float32_rounding_not_a_wrong_leaf() -> None:
    """Measured on the diabetes target (~300, 300 trees): xgboost and lightgbm graphs differ
    by 2.3e-4 (1.1-1.4e-6 relative, float32 sums in another order). A leaf of a late boosting
    round moves a prediction by ~1e-2 or more; that must still fail."""
    original = np.array([300.0, 25.0])
    assert _compare("m", "regression", original, original + np.array([2.3e-4, 0.0])).passed
    assert not _compare("m", "regression", original, original + np.array([1e-2, 0.0])).passed
    assert not _compare("m", "regression", original, original + np.array([0.0, 5e-4])).passed


def test_a_missing_family_converter_names_the_extra() -> None:
    """A family whose converter's package is not installed: one line naming the extra, exit 2
    (ConfigError), rather than 'cannot convert' (which would blame the model)."""
    from kfp_mlflow.core.exceptions import ConfigError
    from kfp_mlflow.models.onnx import _family_converter

    with pytest.raises(ConfigError) as caught:
        _family_converter("boost", "no_such_converter_pkg.convert:convert_boost")
    assert "family 'boost' needs no_such_converter_pkg" in caught.value.message
    assert caught.value.hint == "pip install 'kfp-mlflow[onnx]'"
