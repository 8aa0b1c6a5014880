"""The pieces of the plugin path a user walks (docs/extending.md section 3), without servers:
reading a split, the public encoding, saving a model safely, one-or-many evaluations wired
into register, custom metrics the argument check knows of, and what the evaluation record
carries for like-for-like promotion."""

# No `from __future__ import annotations`: kfp reads the pipeline signatures' real types.
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from kfp import dsl

import kfp_mlflow
from kfp_mlflow.core.contracts import DatasetInfo, EvaluationInfo
from kfp_mlflow.core.exceptions import ConfigError, ContractError
from kfp_mlflow.dsl.ir_checks import check_pipeline
from kfp_mlflow.dsl.pipeline_loading import load_pipeline, merged_arguments
from kfp_mlflow.models.logged_models import _save_skops
from kfp_mlflow.models.metrics import MetricSpec
from kfp_mlflow.registry.head_to_head import _custom_metric, _unmeasurable, held_out_rows
from kfp_mlflow.steps.validation import check_arguments

ROOT = Path(__file__).resolve().parents[2]
MEDAE = {"name": "medae", "function": "sklearn.metrics:median_absolute_error", "direction": "min"}


def _frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "band": rng.choice(["low", "mid", "high"], size=rows).astype(object),
            "y": rng.normal(size=rows),
        }
    )


def _split(tmp_path: Path, frame: pd.DataFrame, task: str = "regression") -> SimpleNamespace:
    """An Input[Dataset] as a step sees it: a path and metadata carrying the record."""
    path = tmp_path / "split.parquet"
    frame.to_parquet(path, index=False)
    artifact = SimpleNamespace(path=str(path), metadata={})
    DatasetInfo(
        role="train", rows=len(frame), target="y", task=task,  # type: ignore[arg-type]
        columns={c: str(t) for c, t in frame.dtypes.items()}, digest="d", source="s", seed=5,
    ).write(artifact)  # fmt: skip
    return artifact


def test_read_split_gives_features_labels_and_the_record(tmp_path):
    rows = kfp_mlflow.read_split(_split(tmp_path, _frame()))
    assert list(rows.features.columns) == ["x", "band"]
    assert rows.labels.name == "y" and len(rows.labels) == 60
    assert rows.info.seed == 5 and rows.info.task == "regression"


def test_read_split_of_a_plain_file_names_the_step(tmp_path):
    artifact = SimpleNamespace(path=str(tmp_path / "x.parquet"), metadata={})
    with pytest.raises(ContractError, match="validate_missing"):
        kfp_mlflow.read_split(artifact, consumer="validate_missing")


@pytest.mark.parametrize(("kind", "width"), [("onehot", 4), ("ordinal", 2)])
def test_column_encoder_encodes_text_next_to_numbers(kind, width):
    frame = _frame().drop(columns=["y"])
    encoded = kfp_mlflow.column_encoder(frame, kind).fit_transform(frame)
    # onehot: x and one column per band; ordinal: x and one code column (no missing values,
    # so no missing-value indicator).
    assert encoded.shape == (60, width)
    assert np.isfinite(np.asarray(encoded, dtype=float)).all()


def test_column_encoder_refuses_an_unknown_kind():
    with pytest.raises(ConfigError, match="kind"):
        kfp_mlflow.column_encoder(_frame(), "binary")


def _forest(frame: pd.DataFrame) -> Any:
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.pipeline import make_pipeline

    features = frame.drop(columns=["y"])
    model = make_pipeline(kfp_mlflow.column_encoder(features), ExtraTreesRegressor(5))
    return model.fit(features, frame["y"]), features


def test_a_tree_ensemble_on_text_saves_with_skops_trusting_only_reviewed_types(tmp_path):
    import mlflow.pyfunc

    frame = _frame()
    model, features = _forest(frame)
    held = _save_skops(model, features, str(tmp_path / "m"), ())
    assert "sklearn.tree._tree.Tree" in held
    flavor = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert flavor["skops_trusted_types"] == held  # what loading trusts: exactly these
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert np.allclose(loaded.predict(features.head(7)), model.predict(features.head(7)))
    assert loaded.metadata.signature.inputs.input_names() == ["x", "band"]


def test_a_model_holding_an_unreviewed_type_is_refused_naming_it(tmp_path):
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline

    frame = _frame()
    features = frame.drop(columns=["y"])
    knn = make_pipeline(kfp_mlflow.column_encoder(features), KNeighborsRegressor(3))
    knn.fit(features, frame["y"])
    with pytest.raises(ContractError, match=r"sklearn\.neighbors\._kd_tree\.KDTree"):
        _save_skops(knn, features, str(tmp_path / "refused"), ())
    reviewed = [
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
    ]
    assert set(reviewed) <= set(_save_skops(knn, features, str(tmp_path / "ok"), reviewed))


@dsl.pipeline(name="register-without-evaluations")
def _unwired() -> None:
    split = kfp_mlflow.preprocess(
        data="sklearn://diabetes", target="disease_progression", task="", seed=1, test_size=0.2,
        min_rows=30,
    )  # fmt: skip
    kfp_mlflow.train(candidate={"family": "linear"}, train_data=split.outputs["train_data"])
    kfp_mlflow.register(model_name="m", primary_metric="", thresholds=[], min_improvement=0.0)


@dsl.pipeline(name="register-one-and-many")
def _one_and_many(candidates: list = [{"family": "linear"}]) -> None:  # noqa: B006
    split = kfp_mlflow.preprocess(
        data="sklearn://diabetes", target="disease_progression", task="", seed=1, test_size=0.2,
        min_rows=30,
    )  # fmt: skip
    with dsl.ParallelFor(candidates) as candidate:
        fit = kfp_mlflow.train(candidate=candidate, train_data=split.outputs["train_data"])
        many = kfp_mlflow.evaluate(model=fit.outputs["model"], test_data=split.outputs["test_data"])
    own = kfp_mlflow.train(candidate={"family": "linear"}, train_data=split.outputs["train_data"])
    one = kfp_mlflow.evaluate(model=own.outputs["model"], test_data=split.outputs["test_data"])
    kfp_mlflow.register(
        evaluations=dsl.Collected(many.outputs["evaluation"]), evaluation=one.outputs["evaluation"],
        model_name="m", primary_metric="", thresholds=[], min_improvement=0.0,
    )  # fmt: skip


def test_register_given_no_evaluations_is_refused_before_anything_runs():
    with pytest.raises(ConfigError, match="evaluations / evaluation"):
        check_pipeline(_unwired)


def test_register_takes_a_loop_and_a_single_evaluation_together():
    check_pipeline(_one_and_many)  # compiles, and the IR checks pass


def test_a_custom_metric_given_as_a_constant_may_be_the_primary_metric_parameter():
    pipeline = load_pipeline(f"{ROOT / 'examples' / 'one_candidate.py'}:one_candidate")
    check_arguments(merged_arguments(pipeline, {}))  # primary_metric="medae": known
    with pytest.raises(ConfigError, match="primary_metric: 'medea'"):
        check_arguments(merged_arguments(pipeline, {"primary_metric": "medea"}))


def test_evaluation_records_without_test_rows_still_read_and_say_why_not():
    old = {  # a kfp_mlflow.evaluation/v1 record from before the test_* fields
        "contract": "kfp_mlflow.evaluation/v1", "candidate": "c", "family": "f",
        "task": "regression", "metrics": {"rmse": 1.0}, "directions": {"rmse": "min"},
        "train_run_id": "t", "evaluate_run_id": "e", "dataset_digest": "d",
    }  # fmt: skip
    record = EvaluationInfo.from_metadata(old, input_name="evaluations", consumer="register")
    assert record.test_rows_uri is None and record.metric_specs == []
    rows, why = held_out_rows(record, tracking_uri=None)
    assert rows is None
    assert "test_rows_uri" in why


def test_which_custom_metrics_cannot_be_re_measured():
    spec = MetricSpec.parse(MEDAE)
    assert _unmeasurable("medae", spec) == ""
    assert MetricSpec.parse(spec.as_dict()) == spec  # travels in the record intact
    probabilities = MetricSpec.parse({**MEDAE, "name": "brier", "uses": "probabilities"})
    assert "probabilities" in _unmeasurable("brier", probabilities)
    assert "metric_specs" in _unmeasurable("medae", None)


def test_a_custom_metric_named_like_one_of_mlflows_own_is_logged_apart():
    ours = MetricSpec.parse({**MEDAE, "name": "max_error"})  # not built in for us; it is in MLflow
    assert _custom_metric(ours, "regression").name == "max_error_custom"
    assert _custom_metric(MetricSpec.parse(MEDAE), "regression").name == "medae"


def _numbers(rows: int = 80) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(4)
    features = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    return features, pd.Series(2 * features["a"] - features["b"], name="y")


def test_an_xgboost_estimator_on_its_own_is_saved_in_xgboosts_own_format(tmp_path):
    xgboost = pytest.importorskip("xgboost")
    import mlflow.pyfunc

    from kfp_mlflow.models.logged_models import _kind, _save_native

    features, target = _numbers()
    model = xgboost.XGBRegressor(n_estimators=5, n_jobs=1).fit(features, target)
    assert _kind(model) == "xgboost"
    _save_native("xgboost", model, features, str(tmp_path / "m"))
    flavors = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())["flavors"]
    assert flavors["xgboost"]["model_format"] == "ubj"  # XGBoost's own format, no pickle
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert np.allclose(loaded.predict(features.head(4)), model.predict(features.head(4)))


def test_lightgbm_s_scikit_learn_api_goes_through_skops_with_its_reviewed_types(tmp_path):
    lightgbm = pytest.importorskip("lightgbm")
    from sklearn.pipeline import make_pipeline

    from kfp_mlflow.models.logged_models import _kind

    features, target = _numbers()
    model = make_pipeline(
        kfp_mlflow.column_encoder(features, "ordinal"),
        lightgbm.LGBMRegressor(n_estimators=5, verbose=-1, n_jobs=1),
    ).fit(features, target)
    assert _kind(model) == "sklearn"  # mlflow.lightgbm would pickle it
    held = _save_skops(model, features, str(tmp_path / "m"), ())
    assert "lightgbm.basic.Booster" in held


def test_an_object_with_no_safe_format_is_refused():
    from kfp_mlflow.models.logged_models import _kind

    with pytest.raises(ContractError, match="publish_model"):
        _kind(object())
