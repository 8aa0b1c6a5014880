"""Families from a plugin's entry point and from an import path, saved and loaded for real."""

from __future__ import annotations

import textwrap

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.data.datasets import as_model_input
from kfp_mlflow.models.families import (
    ENTRY_POINT_GROUP,
    Family,
    available_families,
    get_family,
    registered_families,
    scorer_for,
)
from kfp_mlflow.models.sklearn_backend import (
    Candidate,
    check_candidate,
    save_model,
    train_model,
)

PLUGIN = """
from kfp_mlflow.models.families import Family, ParamAlias

KNN = Family(
    name="plugin_knn",
    regressor="sklearn.neighbors:KNeighborsRegressor",
    classifier="sklearn.neighbors:KNeighborsClassifier",
    aliases={"k": ParamAlias(target="n_neighbors")},
    trusted_types=("numpy.dtype", "sklearn.neighbors._kd_tree.KDTree",
                   "sklearn.metrics._dist_metrics.EuclideanDistance64"),
)


def families():
    return [Family(name="plugin_tree", regressor="sklearn.tree:DecisionTreeRegressor",
                   trusted_types=("numpy.dtype", "sklearn.tree._tree.Tree"))]
"""

ESTIMATORS = """
import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin


class MeanModel(RegressorMixin, BaseEstimator):
    def __init__(self, shrink=0.0):
        self.shrink = shrink

    def fit(self, X, y):
        self.mean_ = float(np.mean(y)) * (1 - self.shrink)
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


class Helper:
    pass


class NumbersOnly(TransformerMixin, BaseEstimator):
    # a user encoder: keeps the numeric columns, as floats

    def fit(self, X, y=None):
        self.columns_ = [c for c in X.columns if X[c].dtype.kind in "if"]
        return self

    def transform(self, X):
        return X[self.columns_].to_numpy(dtype=float)


def numbers_only():
    return NumbersOnly()


def not_a_transformer():
    return 42


class SneakyModel(MeanModel):
    def fit(self, X, y):
        super().fit(X, y)
        self.helper_ = Helper()
        return self
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A real installed distribution: a package and its dist-info (METADATA, entry_points.txt)
    on sys.path, found by importlib.metadata exactly as pip would leave it."""
    (tmp_path / "kfpm_plugin").mkdir()
    (tmp_path / "kfpm_plugin" / "__init__.py").write_text(PLUGIN)
    (tmp_path / "kfpm_models.py").write_text(ESTIMATORS)
    info = tmp_path / "kfpm_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kfpm-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""
        [{ENTRY_POINT_GROUP}]
        plugin_knn = kfpm_plugin:KNN
        plugin_more = kfpm_plugin:families
        broken = kfpm_plugin:NOT_THERE
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registered_families.cache_clear()
    yield tmp_path
    registered_families.cache_clear()


def _data(rows: int = 80) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"x": rng.normal(size=rows), "c": rng.choice(["a", "b"], rows)})
    return as_model_input(features), features["x"] * 2 + (features["c"] == "a")


def _round_trip(candidate: Candidate, task: str, path) -> tuple[object, object]:
    features, labels = _data()
    if task == "classification":
        labels = pd.Series(np.where(labels > 0, "yes", "no"))
    model = train_model(candidate, task, 0, features, labels)
    save_model(candidate, model, features, str(path))
    loaded = mlflow.pyfunc.load_model(str(path))
    return loaded, features


def test_entry_point_families_are_registered_and_round_trip(plugin, tmp_path):
    with pytest.warns(UserWarning, match="'broken'.*ignored"):
        families = registered_families()
    assert {"plugin_knn", "plugin_tree"} <= set(families)
    assert {"plugin_knn", "plugin_tree"} <= set(available_families())
    candidate = Candidate.parse({"family": "plugin_knn", "params": {"k": 3}})
    check_candidate(candidate, "classification", 0)
    loaded, features = _round_trip(candidate, "classification", tmp_path / "knn")
    assert set(loaded.predict(features)) <= {"yes", "no"}
    scorer = scorer_for(str(tmp_path / "knn"))  # the scikit-learn object: probabilities
    assert scorer.get_params()["model__n_neighbors"] == 3
    assert scorer.predict_proba(features).shape == (80, 2)
    with pytest.raises(ConfigError, match="'plugin_tree' has no classification model"):
        check_candidate(Candidate.parse({"family": "plugin_tree"}), "classification", 0)


def test_import_path_estimator_trusts_its_own_type_only(plugin, tmp_path):
    candidate = Candidate.parse({"family": "kfpm_models:MeanModel", "params": {"shrink": 0.5}})
    family = get_family("kfpm_models:MeanModel")
    assert family.trusted_types[-1] == "kfpm_models.MeanModel"
    assert family.classifier is None  # a regressor: classification is refused by name
    loaded, features = _round_trip(candidate, "regression", tmp_path / "mean")
    assert np.ptp(loaded.predict(features)) == 0
    with pytest.raises(ConfigError, match="not accept: bogus"):
        check_candidate(
            Candidate.parse({"family": "kfpm_models:MeanModel", "params": {"bogus": 1}}),
            "regression",
            0,
        )
    sneaky = Candidate.parse({"family": "kfpm_models:SneakyModel"})
    with pytest.raises(ConfigError, match=r"types nobody reviewed: kfpm_models\.Helper"):
        _round_trip(sneaky, "regression", tmp_path / "sneaky")
    assert not (tmp_path / "sneaky").exists()  # refused before anything was written


def test_import_path_of_a_registered_class_gets_its_declarations():
    family = get_family("xgboost:XGBClassifier")
    assert family.regressor is None
    assert "xgboost.core.Booster" in family.trusted_types
    assert family.classifier_wrapper == "sklearn.multiclass:OneVsRestClassifier"


def test_a_family_whose_package_is_missing_names_the_extra():
    family = Family(
        name="ghost", regressor="ghost_lib:Model", requirements=("ghost_lib",), extra="ghost"
    )
    with pytest.raises(ConfigError, match=r"needs ghost_lib, not installed.*kfp-mlflow\[ghost\]"):
        family.estimator_class("regression")


def test_custom_preprocessing_by_import_path_and_none(plugin, tmp_path):
    candidate = Candidate.parse(
        {"family": "linear", "preprocessing": "kfpm_models:numbers_only", "params": {"alpha": 2}}
    )
    loaded, features = _round_trip(candidate, "regression", tmp_path / "custom")
    pipeline = scorer_for(str(tmp_path / "custom"))
    assert type(pipeline.named_steps["encode"]).__name__ == "NumbersOnly"
    assert pipeline.named_steps["model"].n_features_in_ == 1  # the text column was dropped
    assert len(loaded.predict(features)) == len(features)
    with pytest.raises(ConfigError, match="returned int, not a scikit-learn transformer"):
        _round_trip(
            Candidate.parse({"family": "linear", "preprocessing": "kfpm_models:not_a_transformer"}),
            "regression",
            tmp_path / "bad",
        )
    with pytest.raises(ConfigError, match="encodes its own inputs"):
        Candidate.parse({"family": "spark_linear", "preprocessing": "onehot"})
    numeric = Candidate.parse({"family": "random_forest", "preprocessing": "none"})
    model = train_model(
        numeric,
        "regression",
        0,
        pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}),
        pd.Series([1.0, 2.0, 3.0, 4.0]),
    )
    assert list(model.named_steps) == ["model"]
