"""Candidates, and the scikit-learn backend that fits and saves most model families.

Encoding lives inside the model (as Spark ML's StringIndexer + VectorAssembler do): a registered
model takes the raw columns, so serving needs no separate preprocessing code. What a family is
— estimators, aliases, defaults, encoding, allowlist — is declared in
:mod:`kfp_mlflow.models.families`;
this module only follows the declarations.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.extensions import load_object
from kfp_mlflow.models.families import Family, get_family, registered_families

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

# Types every saved scikit-learn model may hold beyond skops's own safe list; a family adds its
# reviewed ones (Family.trusted_types). Loading trusts exactly the saved model's list.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = ("numpy.dtype", "kfp_mlflow.data.features.DatetimeFeatures")


def __getattr__(name: str) -> Any:
    # Kept for code written against the first release: the family names, now a registry.
    if name == "FAMILIES":
        return {n: (f.regressor, f.classifier) for n, f in registered_families().items()}
    raise AttributeError(name)


@dataclass(frozen=True)
class Candidate:
    """One point of the search space."""

    name: str
    family: str
    params: dict[str, Any]
    #: Overrides the family's input encoding: onehot, ordinal, none, or ``module:function``
    #: returning a scikit-learn transformer (its class is then trusted when the model loads:
    #: naming the factory is the opt-in).
    preprocessing: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Candidate:
        """Validate a candidate given as a pipeline parameter (a small dict)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"candidates: each candidate must be a mapping, got {raw!r}")
        family = raw.get("family")
        if not isinstance(family, str) or not family:
            raise ConfigError(
                f"candidates: {raw!r} has no family",
                hint="name a family (linear, random_forest, ...) or an import path module:Class",
            )
        get_family(family)  # unknown names fail here, with the list of known ones
        params = raw.get("params") or {}
        if not isinstance(params, dict):
            raise ConfigError(f"candidates: params of {raw!r} must be a mapping")
        preprocessing = raw.get("preprocessing") or None
        if preprocessing is not None:
            _check_preprocessing(str(preprocessing), family)
        return cls(
            name=str(raw.get("name") or family),
            family=family,
            params={key: _restore_int(value) for key, value in params.items()},
            preprocessing=str(preprocessing) if preprocessing else None,
        )

    @property
    def spec(self) -> Family:
        family = get_family(self.family)
        if self.preprocessing:
            return family.model_copy(update={"preprocessing": self.preprocessing})
        return family


_BUILTIN_ENCODINGS = ("onehot", "ordinal", "none")


def _check_preprocessing(value: str, family_name: str) -> None:
    family = get_family(family_name)
    if (
        family.preprocessing == "none"
        and family.backend != "kfp_mlflow.models.sklearn_backend:SKLEARN"
    ):
        raise ConfigError(
            f"candidates: family {family_name!r} encodes its own inputs; preprocessing "
            f"{value!r} cannot apply",
            hint="drop preprocessing from this candidate",
        )
    if value in _BUILTIN_ENCODINGS:
        return
    factory = load_object(value, f"preprocessing {value!r}")
    if not callable(factory):
        raise ConfigError(f"candidates: preprocessing {value!r} is not callable")


def _restore_int(value: Any) -> Any:
    # Pipeline parameters travel as protobuf Struct values, where every number is a double:
    # 200 arrives as 200.0, which integer hyperparameters reject.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def resolved_params(
    candidate: Candidate, task: str, seed: int, rows: int | None = None
) -> dict[str, Any]:
    """What the estimator receives: aliases resolved, family defaults and the seed filled in,
    every name checked against the estimator's own parameters; with ``rows`` (the training
    set's size), the family's large-data caps too (:meth:`Family.large_data_params`)."""
    family = candidate.spec
    params = family.resolve_params(candidate.params, task)
    accepted = family.get_backend().accepted_params(family, task)
    unknown = sorted(set(params) - accepted)
    if unknown:
        estimator = family.estimator_path(task).partition(":")[2]
        raise ConfigError(
            f"candidates: {candidate.name!r} has a parameter {estimator} does not accept: "
            f"{', '.join(unknown)}",
            hint=f"accepted: {', '.join(sorted(accepted))}",
        )
    if family.seed_param in accepted:
        params.setdefault(family.seed_param, seed)
    if rows is not None:
        params.update(family.large_data_params(params, rows))
    return params


def check_candidate(candidate: Candidate, task: str, seed: int) -> None:
    """Everything that can be checked before a task runs: family, names, values."""
    family = candidate.spec
    try:
        family.get_backend().check(family, resolved_params(candidate, task, seed), task, seed)
    except ConfigError as error:
        if repr(candidate.name) in error.message:
            raise
        detail = error.message.removeprefix("candidates: ")
        raise ConfigError(f"candidates: {candidate.name!r}: {detail}", hint=error.hint) from None


def train_model(candidate: Candidate, task: str, seed: int, features: Any, labels: Any) -> Any:
    """The fitted model of ``candidate`` (whatever its backend), taking the raw columns."""
    family = candidate.spec
    rows = len(labels) if isinstance(labels, Sized) else None
    params = resolved_params(candidate, task, seed, rows=rows)
    return family.get_backend().train(family, candidate.name, params, task, seed, features, labels)


def save_model(candidate: Candidate, model: Any, features: Any, path: str) -> None:
    family = candidate.spec
    family.get_backend().save(family, model, features, path)


# --- the scikit-learn backend -------------------------------------------------------------


class SklearnBackend:
    """Families whose estimator has the scikit-learn API, inside a scikit-learn Pipeline that
    encodes the raw columns; saved with ``mlflow.sklearn`` in skops format (no pickle) trusting
    only the family's reviewed types."""

    def accepted_params(self, family: Family, task: str) -> set[str]:
        accepted = family.estimator_class(task)().get_params(deep=False)
        return {*accepted, *family.extra_params}

    def estimator(self, family: Family, params: dict[str, Any], task: str, name: str) -> Any:
        estimator = family.estimator_class(task)()
        try:
            estimator.set_params(**params)
        except ValueError as error:
            raise ConfigError(
                f"candidates: {name!r} has a parameter {type(estimator).__name__} does not "
                f"accept: {error}"
            ) from error
        if task == "classification" and family.classifier_wrapper:
            wrapper = load_object(family.classifier_wrapper, f"family {family.name!r}")
            estimator = wrapper(estimator)
        return estimator

    def check(self, family: Family, params: dict[str, Any], task: str, seed: int) -> None:
        from sklearn.utils._param_validation import InvalidParameterError

        estimator = self.estimator(family, params, task, family.name)
        validate = getattr(estimator, "_validate_params", None)
        if validate is None or not hasattr(estimator, "_parameter_constraints"):
            return  # not an estimator with declared constraints (xgboost, lightgbm...)
        try:
            validate()
        except InvalidParameterError as error:
            raise ConfigError(f"candidates: family {family.name!r}: {error}") from None

    def train(
        self,
        family: Family,
        name: str,
        params: dict[str, Any],
        task: str,
        seed: int,
        features: Any,
        labels: Any,
    ) -> Any:
        from sklearn.utils._param_validation import InvalidParameterError

        model = build_pipeline(family, self.estimator(family, params, task, name), features)
        try:
            model.fit(features, labels)
        except InvalidParameterError as error:
            raise ConfigError(f"candidates: {name!r}: {error}") from error
        return model

    def save(self, family: Family, model: Any, features: Any, path: str) -> None:
        import mlflow.sklearn
        import skops.io
        from mlflow.models import infer_signature

        trusted = sorted({*SKOPS_TRUSTED_TYPES, *family.trusted_types, *_custom_types(model)})
        held = set(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
        if held - set(trusted):
            # Saving would succeed, but loading would need these types trusted: refuse now,
            # where the candidate is named, rather than at serving time.
            raise ConfigError(
                f"candidates: family {family.name!r}: the fitted model holds types nobody "
                f"reviewed: {', '.join(sorted(held - set(trusted)))}",
                hint="register a Family (entry point kfp_mlflow.families) whose trusted_types "
                "lists them after review",
            )
        sample = features.head(_SIGNATURE_ROWS)
        mlflow.sklearn.save_model(
            model,
            path,
            skops_trusted_types=sorted(held),
            signature=infer_signature(sample, model.predict(sample)),
            input_example=features.head(_EXAMPLE_ROWS),
            pip_requirements=model_requirements(family),
        )


SKLEARN = SklearnBackend()


def _custom_types(model: Any) -> set[str]:
    """The class of a custom preprocessing step: trusted because the candidate named its
    factory (the documented opt-in); nothing it holds is trusted beyond that."""
    encode = getattr(model, "named_steps", {}).get("encode")
    if encode is None or type(encode).__module__.startswith("sklearn."):
        return set()
    return {f"{type(encode).__module__}.{type(encode).__qualname__}"}


_SIGNATURE_ROWS = 50
_EXAMPLE_ROWS = 5


def model_requirements(family: Family) -> list[str]:
    """Pinned requirements of a saved model: the base stack plus the family's packages."""
    from importlib import metadata

    from kfp_mlflow.tracking.provenance import pip_requirements

    pinned = pip_requirements()
    distributions = metadata.packages_distributions()
    for module in family.requirements:
        for distribution in distributions.get(module, [module]):
            try:
                pinned.append(f"{distribution}=={metadata.version(distribution)}")
            except metadata.PackageNotFoundError:
                continue
    return sorted(set(pinned))


def build_pipeline(family: Family, estimator: Any, features: pd.DataFrame) -> Pipeline:
    """The family's encoding of the raw columns, then the estimator."""
    from sklearn.pipeline import Pipeline

    if family.preprocessing == "none":
        return Pipeline([("model", estimator)])
    if family.preprocessing in _BUILTIN_ENCODINGS:
        limit = family.sparse_above_rows
        encode = _encoder(
            family.preprocessing, features, limit is not None and len(features) > limit
        )
    else:
        encode = load_object(family.preprocessing, f"preprocessing of {family.name!r}")()
        if not hasattr(encode, "fit_transform"):
            raise ConfigError(
                f"candidates: preprocessing {family.preprocessing!r} returned "
                f"{type(encode).__name__}, not a scikit-learn transformer"
            )
    return Pipeline([("encode", encode), ("model", estimator)])


def column_encoder(features: pd.DataFrame, kind: str = "onehot") -> Any:
    """The encoding our families put in front of their estimators, for your own model.

    A scikit-learn ``ColumnTransformer`` over the raw columns of ``features`` (text, numbers,
    timestamps), to go first in your pipeline so the saved model takes the raw columns:

    * ``onehot`` (linear models, and any estimator that wants scaled inputs): numbers imputed
      with the median and standardised; text imputed with the most frequent value and one-hot
      encoded (unknown values at scoring time ignored, at most 50 columns per text column);
    * ``ordinal`` (tree ensembles): numbers imputed, with a missing-value indicator; text as
      ordinal codes (unknown: -1, missing: -2).

    Timestamps become year, month, day, day of week and hour in both. Every type it holds is on
    the reviewed skops list, so :func:`kfp_mlflow.save_model` saves it safely.
    """
    if kind not in ("onehot", "ordinal"):
        raise ConfigError(f"column_encoder: kind {kind!r} is not 'onehot' or 'ordinal'")
    return _encoder(kind, features)


def _encoder(kind: str, features: pd.DataFrame, sparse: bool = False) -> Any:
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from kfp_mlflow.data.features import datetime_features

    dates = [c for c in features.columns if pd.api.types.is_datetime64_any_dtype(features[c])]
    numeric = [
        c
        for c in features.columns
        if pd.api.types.is_numeric_dtype(features[c])
        and not pd.api.types.is_bool_dtype(features[c])
        and c not in dates
    ]
    categorical = [c for c in features.columns if c not in numeric and c not in dates]
    if kind == "onehot":
        numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        # max_categories bounds the width (and memory) whatever a text column holds.
        categories: Any = make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                sparse_output=sparse,
                max_categories=_MAX_ONEHOT,
            ),
        )
    else:
        # Trees split on codes: one column per feature, missingness kept as its own signal.
        numbers = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
        categories = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=-1,
            encoded_missing_value=-2,
            dtype=np.float64,
        )
    # Raw timestamps in, numbers out: serving takes the same timestamps training had.
    timestamps = make_pipeline(datetime_features(), SimpleImputer(strategy="median"))
    return ColumnTransformer(
        [
            ("numeric", numbers, numeric),
            ("categorical", categories, categorical),
            ("dates", timestamps, dates),
        ],
        verbose_feature_names_out=False,
    )


_MAX_ONEHOT = 50
