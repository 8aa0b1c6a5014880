"""Datetime columns as model features, inside the scikit-learn pipeline."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from kfp_mlflow.data.features import DATETIME_PARTS, datetime_features


def test_each_datetime_column_becomes_five_numbers():
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2024-03-05 13:20", "2025-12-31 23:59"]),
            "zoned": pd.to_datetime(
                ["2024-01-01T01:00:00+02:00", "2024-06-30T12:00:00Z"], utc=True
            ),
        }
    )
    transformer = datetime_features().fit(frame)
    out = transformer.transform(frame)
    assert out.shape == (2, 10)
    # 2024-03-05 was a Tuesday (Monday = 0); +02:00 at 01:00 is 23:00 UTC the day before.
    np.testing.assert_array_equal(out[0], [2024, 3, 5, 1, 13, 2023, 12, 31, 6, 23])
    np.testing.assert_array_equal(out[1], [2025, 12, 31, 2, 23, 2024, 6, 30, 6, 12])
    assert list(transformer.get_feature_names_out()) == [
        f"{column}_{part}" for column in ("at", "zoned") for part in DATETIME_PARTS
    ]


def test_serving_text_gives_the_same_numbers_and_nan_for_missing():
    stamps = pd.DataFrame(
        {"at": pd.to_datetime(["2024-03-05 13:20", None, "2021-07-04"], format="ISO8601")}
    )
    transformer = datetime_features().fit(stamps)
    as_text = pd.DataFrame({"at": ["2024-03-05T13:20:00", None, "2021-07-04"]})
    np.testing.assert_array_equal(transformer.transform(as_text), transformer.transform(stamps))
    assert np.isnan(transformer.transform(stamps)[1]).all()
    garbage = transformer.transform(pd.DataFrame({"at": ["yesterday"]}))
    assert np.isnan(garbage).all()


def test_wrong_column_count_is_refused():
    transformer = datetime_features().fit(pd.DataFrame({"a": pd.to_datetime(["2024-01-01"])}))
    with pytest.raises(ValueError, match="fitted on 1 columns, got 2"):
        transformer.transform(pd.DataFrame({"a": ["2024-01-01"], "b": ["2024-01-02"]}))


def test_works_inside_a_model_pipeline_and_survives_clone_and_pickle():
    rng = np.random.default_rng(0)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 24 * 365, 300), unit="h")
    frame = pd.DataFrame({"when": when, "x": rng.normal(size=300)})
    y = frame["when"].dt.month * 2.0 + frame["x"]
    model = make_pipeline(
        make_column_transformer(
            (make_pipeline(datetime_features(), SimpleImputer()), ["when"]),
            remainder="passthrough",
        ),
        LinearRegression(),
    )
    model.fit(frame, y)
    assert model.score(frame, y) > 0.99
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(restored.predict(frame), model.predict(frame))
    assert clone(model).get_params()["columntransformer__transformers"]
