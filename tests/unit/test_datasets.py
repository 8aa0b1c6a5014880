"""Reading, validating, splitting and fingerprinting datasets (no server, no kfp)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.datasets import digest, infer_task, read_dataset, split, validate
from kfp_mlflow.exceptions import ConfigError, DataError


def _frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "size": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "price": rng.normal(100, 10, size=rows),
        }
    )


def test_reads_csv_and_parquet_alike(tmp_path):
    frame = _frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    from_csv = read_dataset(str(tmp_path / "d.csv"))
    from_parquet = read_dataset(str(tmp_path / "d.parquet"))
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_exact=False)
    assert digest(from_parquet) == digest(frame)


def test_bundled_dataset_has_named_target_and_class_names():
    diabetes = read_dataset("sklearn://diabetes")
    assert "disease_progression" in diabetes.columns
    assert len(diabetes) == 442
    wine = read_dataset("sklearn://wine")
    assert set(wine["cultivar"]) == {"class_0", "class_1", "class_2"}


@pytest.mark.parametrize(
    ("uri", "error", "fragment"),
    [
        ("/nonexistent/data.csv", DataError, "file not found: /nonexistent/data.csv"),
        ("sklearn://nope", ConfigError, "unknown bundled dataset sklearn://nope"),
        ("ftp://host/data.csv", ConfigError, "unsupported URI scheme 'ftp'"),
        ("s3://bucket/data.csv", ConfigError, "needs an S3 endpoint"),
    ],
)
def test_bad_sources_name_the_culprit(uri, error, fragment):
    with pytest.raises(error, match=fragment):
        read_dataset(uri)


def test_unparseable_file_is_a_data_error(tmp_path):
    bad = tmp_path / "d.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match=r"cannot parse .*d\.parquet as parquet"):
        read_dataset(str(bad))


def test_unknown_target_lists_the_columns():
    with pytest.raises(DataError, match="column 'cost' is not in the dataset") as info:
        validate(_frame(), "cost", "", 10)
    assert "size, colour, price" in str(info.value)


def test_constant_and_empty_targets_are_refused():
    frame = _frame()
    frame["price"] = 3.0
    with pytest.raises(DataError, match="constant"):
        validate(frame, "price", "", 10)
    frame["price"] = np.nan
    with pytest.raises(DataError, match="empty"):
        validate(frame, "price", "", 10)


def test_too_few_rows_says_how_many():
    with pytest.raises(DataError, match="8 rows with a 'price' value, fewer than the 30 required"):
        validate(_frame(8), "price", "", 30)


def test_text_target_cannot_be_regressed():
    with pytest.raises(DataError, match="'colour' is not numeric") as info:
        validate(_frame(), "colour", "regression", 10)
    assert "--task classification" in str(info.value)


def test_unsupported_feature_type_is_named():
    frame = _frame()
    frame["when"] = pd.Timestamp("2026-01-01")
    with pytest.raises(DataError, match="column 'when' has unsupported type"):
        validate(frame, "price", "", 10)


def test_task_inference():
    assert infer_task(pd.Series([1.5, 2.25, 3.0, 4.75])) == "regression"
    assert infer_task(pd.Series(["a", "b"])) == "classification"
    assert infer_task(pd.Series([True, False])) == "classification"
    assert infer_task(pd.Series([0, 1, 2, 1, 0])) == "classification"
    assert infer_task(pd.Series(range(100))) == "regression"


def test_split_is_deterministic_and_stratified():
    frame = _frame(100)
    first = split(frame, "colour", "classification", seed=7, test_size=0.2)
    again = split(frame, "colour", "classification", seed=7, test_size=0.2)
    other = split(frame, "colour", "classification", seed=8, test_size=0.2)
    pd.testing.assert_frame_equal(first.test, again.test)
    assert not first.test.equals(other.test)
    assert len(first.test) == 20
    assert set(first.test["colour"]) == set(frame["colour"])
    assert first.digest == again.digest


def test_digest_ignores_index_but_not_values():
    frame = _frame()
    assert digest(frame) == digest(frame.set_axis(range(100, 160)))
    changed = frame.copy()
    changed.loc[0, "price"] += 1
    assert digest(changed) != digest(frame)


def test_rows_without_target_are_dropped_before_splitting():
    frame = _frame(60)
    frame.loc[:9, "price"] = np.nan
    parts = split(frame, "price", "regression", seed=1, test_size=0.25)
    assert len(parts.train) + len(parts.test) == 50
