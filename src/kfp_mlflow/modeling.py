"""Model families and the scikit-learn pipelines that wrap them.

Encoding lives inside the model (as Spark ML's StringIndexer + VectorAssembler do): a registered
model takes the raw columns, so serving needs no separate preprocessing code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kfp_mlflow.exceptions import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

# family → (regression estimator, classification estimator), as "module:Class".
FAMILIES: dict[str, tuple[str, str]] = {
    "linear": ("sklearn.linear_model:Ridge", "sklearn.linear_model:LogisticRegression"),
    "random_forest": (
        "sklearn.ensemble:RandomForestRegressor",
        "sklearn.ensemble:RandomForestClassifier",
    ),
    "gradient_boosting": (
        "sklearn.ensemble:HistGradientBoostingRegressor",
        "sklearn.ensemble:HistGradientBoostingClassifier",
    ),
}

# Types a saved model of these families holds beyond skops's own safe list, reviewed once.
# Loading trusts exactly these, so a model file cannot smuggle in anything else; a new family
# that needs more must add them here (tests/unit/test_modeling.py checks every family).
SKOPS_TRUSTED_TYPES = (
    "kfp_mlflow.features.DatetimeFeatures",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


# One-hot columns per categorical feature at most (the rest pooled as "infrequent").
MAX_CATEGORIES = 50


# Logistic regression has no `alpha`; the search space speaks of one regularisation knob.
def _inverse(alpha: Any) -> float:
    return 1.0 / float(alpha)


_CLASSIFIER_PARAM_ALIASES: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "linear": {"alpha": ("C", _inverse)}
}


@dataclass(frozen=True)
class Candidate:
    """One point of the search space."""

    name: str
    family: str
    params: dict[str, Any]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Candidate:
        """Validate a candidate given as a pipeline parameter (a small dict)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"candidates: each candidate must be a mapping, got {raw!r}")
        family = raw.get("family")
        if family not in FAMILIES:
            raise ConfigError(
                f"candidates: unknown family {family!r} in {raw!r}",
                hint=f"choose one of {', '.join(FAMILIES)}",
            )
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"candidates: params of {raw!r} must be a mapping")
        return cls(
            name=str(raw.get("name") or family),
            family=family,
            params={key: _restore_int(value) for key, value in params.items()},
        )


def _restore_int(value: Any) -> Any:
    # Pipeline parameters travel as protobuf Struct values, where every number is a double:
    # 200 arrives as 200.0, which integer hyperparameters reject.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _load(reference: str) -> Any:
    import importlib

    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


def build_estimator(candidate: Candidate, task: str, seed: int) -> Any:
    """The bare estimator for ``candidate`` with its hyperparameters and seed applied."""
    regressor, classifier = FAMILIES[candidate.family]
    estimator = _load(regressor if task == "regression" else classifier)()
    params = dict(candidate.params)
    if task == "classification":
        for name, (target, convert) in _CLASSIFIER_PARAM_ALIASES.get(candidate.family, {}).items():
            if name in params:
                params[target] = convert(params.pop(name))
        if candidate.family == "linear":
            params.setdefault("max_iter", 2000)
    if "random_state" in estimator.get_params():
        params.setdefault("random_state", seed)
    try:
        estimator.set_params(**params)
    except ValueError as error:
        raise ConfigError(
            f"candidates: {candidate.name!r} has a parameter {type(estimator).__name__} does not "
            f"accept: {error}"
        ) from error
    return estimator


def build_pipeline(candidate: Candidate, task: str, seed: int, features: pd.DataFrame) -> Pipeline:
    """Imputation, scaling and one-hot encoding of the raw columns, then the estimator."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from kfp_mlflow.features import datetime_features

    dates = [c for c in features.columns if pd.api.types.is_datetime64_any_dtype(features[c])]
    numeric = [
        c
        for c in features.columns
        if pd.api.types.is_numeric_dtype(features[c])
        and not pd.api.types.is_bool_dtype(features[c])
        and c not in dates
    ]
    categorical = [c for c in features.columns if c not in numeric and c not in dates]
    encode = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            # Raw timestamps in, numbers out: serving takes the same timestamps training had.
            ("dates", make_pipeline(datetime_features(), SimpleImputer(strategy="median")), dates),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    # Bounded by design: at most MAX_CATEGORIES columns per feature, rare values
                    # pooled, so a high-cardinality column cannot blow up memory.
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=MAX_CATEGORIES,
                        sparse_output=False,
                    ),
                ),
                categorical,
            ),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("encode", encode), ("model", build_estimator(candidate, task, seed))])


def fit(model: Pipeline, candidate: Candidate, features: pd.DataFrame, labels: pd.Series) -> None:
    """Fit ``model``; a hyperparameter the estimator rejects is the candidate's fault."""
    from sklearn.utils._param_validation import InvalidParameterError

    try:
        model.fit(features, labels)
    except InvalidParameterError as error:
        raise ConfigError(f"candidates: {candidate.name!r}: {error}") from error


def as_model_input(features: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain text, so the MLflow signature is portable (no pandas dtypes)."""
    import pandas as pd

    converted = features.copy()
    for column in converted.columns:
        series = converted[column]
        if (
            pd.api.types.is_bool_dtype(series)
            or pd.api.types.is_numeric_dtype(series)
            or pd.api.types.is_datetime64_any_dtype(series)
        ):
            continue
        converted[column] = series.astype("object").where(series.notna(), None).astype(str)
        converted.loc[series.isna(), column] = None
    return converted
