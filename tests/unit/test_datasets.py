"""Reading, validating, splitting and fingerprinting datasets (no server, no kfp)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.exceptions import ConfigError, DataError
from kfp_mlflow.data.datasets import (
    column_kinds,
    datetime_columns,
    digest,
    id_like_columns,
    infer_task,
    looks_continuous,
    prepare,
    read_dataset,
    split,
    validate,
)


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
        ("nosuch://host/data.csv", ConfigError, "unsupported URI scheme 'nosuch'"),
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
    frame["took"] = pd.Timedelta(seconds=3)
    with pytest.raises(DataError, match="column 'took' has unsupported type"):
        validate(frame, "price", "", 10)
    frame = frame.drop(columns="took").assign(when=pd.Timestamp("2026-01-01"))
    assert validate(frame, "price", "", 10) == "regression"  # timestamps are features


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


# --- Checks before any training (issue 9) -------------------------------------------------------


def test_no_rows_is_said_before_anything_else():
    with pytest.raises(DataError, match="the dataset has no rows") as info:
        validate(_frame().head(0), "price", "", 10)
    assert info.value.exit_code == 3


def test_duplicate_columns_in_a_frame_are_named():
    frame = pd.concat([_frame(), _frame()[["size"]]], axis=1)
    with pytest.raises(DataError, match="duplicate column names: 'size'"):
        validate(frame, "price", "", 10)


def test_one_class_target_is_refused():
    frame = _frame().assign(label="yes")
    with pytest.raises(DataError, match=r"column 'label' is constant \('yes', one class\)"):
        validate(frame, "label", "classification", 10)


def test_continuous_target_under_classification_counts_values():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=1500), "y": rng.integers(0, 1200, 1500) * 1.0})
    frame["y"] = np.arange(1500) % 1200
    with pytest.raises(
        DataError,
        match=r"target: column 'y' has 1,200 distinct values in 1,500 rows: it looks continuous",
    ) as info:
        validate(frame, "y", "classification", 10)
    assert "use --task regression" in str(info.value)
    assert validate(frame, "y", "regression", 10) == "regression"


def test_looks_continuous_rule():
    assert looks_continuous(pd.Series(np.linspace(0, 1, 50)))
    assert not looks_continuous(pd.Series([0.0, 1.0] * 50))  # float-coded classes
    assert not looks_continuous(pd.Series(np.arange(3000) % 30))  # 30 classes, many rows
    assert not looks_continuous(pd.Series(["a", "b"] * 20))
    assert looks_continuous(pd.Series(np.arange(300)))  # 300 integer values in 300 rows


def test_classes_too_small_for_a_stratified_split_are_named():
    frame = _frame(60)
    frame["label"] = ["a"] * 30 + ["b"] * 28 + ["c", "d"]
    with pytest.raises(DataError) as info:
        validate(frame, "label", "classification", 10)
    message = str(info.value)
    assert "column 'label' has 2 class(es) with fewer than 2 rows" in message
    assert "'c' (1), 'd' (1)" in message
    assert "add rows for these classes, or drop them" in message
    with pytest.raises(DataError, match=r"'c' \(1\), 'd' \(1\)"):
        split(frame, "label", "classification", seed=1, test_size=0.2)


def test_one_row_per_class_names_integer_labels_plainly():
    frame = pd.DataFrame({"x": range(40), "label": range(40)})
    with pytest.raises(DataError, match=r"40 class\(es\) .*: 0 \(1\), 1 \(1\).* and 30 more"):
        validate(frame, "label", "classification", 10)


def test_more_classes_than_test_rows_is_refused():
    frame = pd.DataFrame({"x": range(60), "label": [f"k{i % 20}" for i in range(60)]})
    with pytest.raises(
        DataError, match=r"has 20 classes, but a 0.1 split of 60 rows leaves 6 test"
    ):
        validate(frame, "label", "classification", 10, test_size=0.1)
    assert validate(frame, "label", "classification", 10, test_size=0.4) == "classification"


def test_infinite_values_name_the_columns():
    frame = _frame()
    frame.loc[[3, 7], "size"] = np.inf
    frame["other"] = 1.0
    frame.loc[5, "other"] = -np.inf
    with pytest.raises(
        DataError, match=r"infinite values \(±inf\) in 'size' \(2 rows\), 'other' \(1 rows\)"
    ):
        validate(frame, "price", "", 10)
    frame = _frame()
    frame.loc[0, "price"] = np.inf
    with pytest.raises(DataError, match=r"infinite values \(±inf\) in 'price'"):
        validate(frame, "price", "regression", 10)


def test_classification_split_is_always_stratified():
    frame = pd.DataFrame({"x": range(200), "label": ["rare"] * 10 + ["common"] * 190})
    parts = split(frame, "label", "classification", seed=3, test_size=0.2)
    assert parts.test["label"].value_counts().to_dict() == {"common": 38, "rare": 2}


# --- Identifier-like and high-cardinality columns ----------------------------------------------


def test_unique_text_id_is_dropped_on_50000_rows():
    rng = np.random.default_rng(0)
    rows = 50_000
    frame = pd.DataFrame(
        {
            "order_ref": [f"ORD-{i:08d}" for i in rng.permutation(rows)],
            "amount": rng.normal(size=rows),
            "segment": rng.choice(["a", "b", "c"], rows),
            "label": rng.choice(["yes", "no"], rows),
        }
    )
    prepared = prepare(frame, "label", "", 30, test_size=0.2)
    assert "order_ref" not in prepared.frame.columns
    assert prepared.profile.warnings() == [
        "dropped column 'order_ref': unique in each of the 50,000 rows (an identifier): "
        "a model cannot generalise from it"
    ]
    assert prepared.profile.categorical_columns == ("segment",)
    assert prepared.profile.numeric_columns == ("amount",)


def test_integer_ids_are_dropped_but_not_small_tables_measurements():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": rng.permutation(60) + 1000,
            "row": np.arange(60),
            "income": rng.permutation(60) * 37 + 20_000,  # unique too, but a measurement
            "size": rng.normal(size=60),  # floats are never identifiers
            "y": rng.normal(size=60),
        }
    )
    dropped = {d.column for d in id_like_columns(frame, "y")}
    assert dropped == {"customer_id", "row"}
    large = pd.DataFrame({"n": np.random.default_rng(1).permutation(5000), "y": range(5000)})
    assert [d.column for d in id_like_columns(large, "y")] == ["n"]


def test_high_cardinality_text_is_dropped_with_the_count():
    rng = np.random.default_rng(0)
    rows = 400
    frame = pd.DataFrame(
        {
            "street": [f"street {i}" for i in rng.integers(0, 300, rows)],
            "city": [f"city {i}" for i in rng.integers(0, 60, rows)],
            "y": rng.normal(size=rows),
        }
    )
    dropped = id_like_columns(frame, "y")
    assert [d.column for d in dropped] == ["street"]
    assert "distinct values in 400 rows (more than half)" in dropped[0].reason
    capped = id_like_columns(frame, "y", max_categories=50)
    assert [d.column for d in capped] == ["street", "city"]
    assert "more than max_categories=50" in capped[1].reason


def test_the_target_and_tiny_tables_are_never_dropped():
    frame = pd.DataFrame({"name": [f"n{i}" for i in range(40)], "id": [f"i{i}" for i in range(40)]})
    assert [d.column for d in id_like_columns(frame, "id")] == ["name"]
    assert id_like_columns(frame.head(10), "id") == []


def test_nothing_left_to_learn_from_is_an_error():
    frame = pd.DataFrame({"user_id": [f"u{i}" for i in range(50)], "y": np.arange(50) * 1.5})
    with pytest.raises(DataError, match=r"no usable feature columns besides the target 'y'"):
        prepare(frame, "y", "", 30)


# --- Timestamps ---------------------------------------------------------------------------------


def test_iso_text_columns_become_timestamps():
    rows = 40
    frame = pd.DataFrame(
        {
            "day": [f"2024-01-{1 + i % 28:02d}" for i in range(rows)],
            "at": [f"2024-03-05T{i % 24:02d}:15:00Z" for i in range(rows)],
            "ambiguous": ["03/04/2024"] * rows,
            "year_text": ["2024"] * rows,
            "native": pd.date_range("2020-01-01", periods=rows, freq="h", tz="Europe/Paris"),
            "x": np.arange(rows) * 0.5,
            "y": np.arange(rows) * 1.5,
        }
    )
    assert datetime_columns(frame) == ["day", "at", "native"]
    prepared = prepare(frame, "y", "", 30)
    assert prepared.profile.datetime_columns == ("day", "at", "native")
    assert str(prepared.frame["at"].dtype) == "datetime64[us, UTC]"
    assert prepared.frame["day"].iloc[1] == pd.Timestamp("2024-01-02")
    assert prepared.profile.as_dict()["datetime_columns"] == ["day", "at", "native"]
    assert "ambiguous" in column_kinds(prepared.frame, "y")["categorical"]


def test_text_that_does_not_fully_parse_stays_text():
    early = pd.DataFrame({"d": ["2024-01-01", "not a date"] * 20, "y": range(40)})
    assert datetime_columns(early) == []
    # Beyond the 1,000-value sample: an impossible date that matches the pattern.
    late = pd.DataFrame({"d": ["2024-01-01"] * 1200 + ["2024-02-30"], "y": range(1201)})
    assert datetime_columns(late) == []
    assert datetime_columns(late.head(1200)) == ["d"]
