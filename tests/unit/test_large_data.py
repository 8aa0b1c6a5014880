"""Large training sets stay tractable by the family's own declaration (RowCap), and evaluation
bounds its permutation importance; small data is fitted exactly as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from pydantic import ValidationError
from sklearn.dummy import DummyRegressor
from sklearn.metrics import r2_score

from kfp_mlflow.data.datasets import as_model_input
from kfp_mlflow.models import metrics as evaluation
from kfp_mlflow.models.families import Family, RowCap, get_family
from kfp_mlflow.models.metrics import feature_importance
from kfp_mlflow.models.sklearn_backend import (
    Candidate,
    build_pipeline,
    resolved_params,
    train_model,
)
from kfp_mlflow.steps.search_space import default_candidates

FOREST_CAP = 50_000


def _forest(**params: object) -> Candidate:
    return Candidate(name="rf", family="random_forest", params=dict(params))


def test_the_random_forest_family_declares_its_per_tree_sample_cap():
    caps = get_family("random_forest").row_caps
    assert caps == (RowCap(param="max_samples", rows=FOREST_CAP, when={"bootstrap": True}),)


@pytest.mark.parametrize("rows", [1_000, FOREST_CAP])
def test_no_cap_at_or_below_the_threshold(rows):
    assert "max_samples" not in resolved_params(_forest(), "regression", 0, rows=rows)
    assert resolved_params(_forest(), "regression", 0, rows=rows) == resolved_params(
        _forest(), "regression", 0
    )


def test_cap_above_the_threshold_is_a_fraction_of_the_rows():
    params = resolved_params(_forest(n_estimators=5), "classification", 0, rows=800_000)
    assert params["max_samples"] == pytest.approx(FOREST_CAP / 800_000)
    # Everything else is what the candidate and the family's defaults say.
    assert params == {
        "n_estimators": 5,
        "n_jobs": 1,
        "class_weight": "balanced_subsample",
        "random_state": 0,
        "max_samples": 0.0625,
    }


def test_an_explicit_user_value_is_respected():
    assert resolved_params(_forest(max_samples=0.9), "regression", 0, rows=10**6)[
        "max_samples"
    ] == pytest.approx(0.9)
    # Without bootstrap there is no sample to cap (scikit-learn would reject max_samples).
    assert "max_samples" not in resolved_params(
        _forest(bootstrap=False), "regression", 0, rows=10**6
    )


def test_families_without_caps_are_unchanged_on_large_data():
    for candidate in default_candidates():
        if candidate["family"] == "random_forest":
            continue
        spec = Candidate.parse(candidate)
        assert resolved_params(spec, "regression", 0, rows=10**6) == resolved_params(
            spec, "regression", 0
        )


def test_row_cap_as_a_count_and_its_validation():
    cap = RowCap(param="subsample_rows", rows=1_000, fraction=False)
    assert cap.value({}, 5_000) == 1_000
    assert cap.value({}, 1_000) is None
    assert cap.value({"subsample_rows": 7}, 5_000) is None
    with pytest.raises(ValidationError):
        RowCap(param="x", rows=0)
    family = Family(name="plain", regressor="sklearn.linear_model:Ridge", row_caps=(cap,))
    assert family.large_data_params({"alpha": 1.0}, 5_000) == {"subsample_rows": 1_000}
    assert family.large_data_params({"alpha": 1.0}, 500) == {}


def test_the_fitted_forest_uses_the_cap_only_above_the_threshold():
    rng = np.random.default_rng(0)

    def fit(rows: int):
        features = pd.DataFrame(
            {"x": rng.normal(size=rows), "city": rng.choice(["oslo", "lima"], size=rows)}
        )
        labels = features["x"] * 2 + rng.normal(scale=0.1, size=rows)
        model = train_model(
            _forest(n_estimators=2, max_depth=2), "regression", 0, as_model_input(features), labels
        )
        return model.named_steps["model"]

    large = fit(FOREST_CAP + 10_000)
    assert large.max_samples == pytest.approx(FOREST_CAP / (FOREST_CAP + 10_000), rel=1e-5)
    assert fit(2_000).max_samples is None  # scikit-learn's default: every row per tree


class _RowCounter(DummyRegressor):
    """A real scikit-learn regressor that remembers the largest batch it scored."""

    largest = 0

    def predict(self, X, return_std=False):  # noqa: N803  (scikit-learn's signature)
        type(self).largest = max(type(self).largest, len(X))
        return super().predict(X, return_std=return_std)


@pytest.mark.parametrize(("rows", "scored"), [(40, 40), (300, 100)])
def test_permutation_importance_scores_a_bounded_seeded_sample(monkeypatch, rows, scored):
    monkeypatch.setattr(evaluation, "IMPORTANCE_ROWS", 100)
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    target = pd.Series(rng.normal(size=rows))
    _RowCounter.largest = 0
    model = _RowCounter().fit(features, target)
    first = feature_importance(model, features, target, "regression")
    assert _RowCounter.largest == scored
    assert list(first.columns) == ["feature", "importance_mean", "importance_std"]
    assert first.equals(feature_importance(model, features, target, "regression"))


def test_linear_one_hot_stays_sparse_on_large_data_with_the_same_fit():
    assert get_family("linear").sparse_above_rows == 100_000
    rng = np.random.default_rng(0)
    rows = 400
    features = as_model_input(
        pd.DataFrame(
            {
                "x": rng.normal(size=rows),
                "city": rng.choice([f"c{i}" for i in range(30)], size=rows),
            }
        )
    )
    labels = features["x"] * 2 + (features["city"] == "c3") * 3 + rng.normal(size=rows)
    linear = get_family("linear")
    estimator = {"alpha": 1.0}

    def encoded(family: Family):
        from sklearn.linear_model import Ridge

        model = build_pipeline(family, Ridge(**estimator), features).fit(features, labels)
        return model.named_steps["encode"].transform(features), model.predict(features)

    dense, dense_predictions = encoded(linear)
    sparse, sparse_predictions = encoded(linear.model_copy(update={"sparse_above_rows": 100}))
    assert isinstance(dense, np.ndarray)
    assert scipy.sparse.issparse(sparse)
    np.testing.assert_allclose(sparse.toarray(), dense)
    # Ridge solves sparse input iteratively (sparse_cg, tol 1e-4) instead of by Cholesky: the
    # same fit within the solver's tolerance.
    np.testing.assert_allclose(sparse_predictions, dense_predictions, atol=0.01 * labels.std())
    assert r2_score(labels, sparse_predictions) == pytest.approx(
        r2_score(labels, dense_predictions), abs=1e-4
    )


def test_the_dataset_schema_sample_keeps_every_column_optional_that_has_gaps():
    from mlflow.types.utils import _infer_schema

    from kfp_mlflow.steps.preprocess import _SCHEMA_ROWS, _schema_sample

    rows = _SCHEMA_ROWS + 5_000
    frame = pd.DataFrame(
        {"x": np.arange(rows, dtype=float), "city": np.array(["oslo"] * rows, dtype=object)}
    )
    frame.loc[rows - 3, "x"] = np.nan  # the only gap, far past the first rows
    frame.loc[rows - 1, "city"] = None
    sample = _schema_sample(frame)
    assert len(sample) == _SCHEMA_ROWS + 2
    assert _infer_schema(sample).to_dict() == _infer_schema(frame).to_dict()
    small = frame.head(100)
    assert _schema_sample(small) is small
