"""Model families: what a candidate's ``family`` names, declared as data, open to plugins.

A :class:`Family` says everything the train step needs to know about a kind of model: its
regression and classification estimators (``module:Class``), the hyperparameter aliases that let
one search space speak of both (``alpha`` → ``C = 1/alpha`` for logistic regression), default
parameters, how its inputs are encoded, and how it is saved — the *backend*, an object that fits
and saves (:mod:`kfp_mlflow.models.sklearn_backend` for scikit-learn-compatible estimators, saved
with skops and
the family's reviewed allowlist; :mod:`kfp_mlflow.models.spark_backend` for Spark ML pipelines,
saved with the
``mlflow.spark`` flavor). Nothing outside this module branches on a family's name.

Where families come from, first match wins:

1. the built-in ones below (``linear``, ``random_forest``, ``gradient_boosting``, ``xgboost``,
   ``lightgbm``, ``spark_random_forest``, ``spark_gbt``, ``spark_linear``);
2. the entry-point group ``kfp_mlflow.families`` of installed distributions: the entry point's
   object is a :class:`Family` (or a callable returning one or a list of them)::

       [project.entry-points."kfp_mlflow.families"]
       my_model = "my_pkg.families:MY_FAMILY"

3. an import path ``module:Class`` of any scikit-learn-compatible estimator. A class that a
   registered family uses (``xgboost:XGBRegressor``) gets that family's declarations. Any other
   class is trusted on load for its own type only — naming it is the opt-in; a fitted model that
   holds further types fails to save with a message listing them, and the fix is to register a
   family whose ``trusted_types`` lists them after review.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import cache
from importlib import metadata
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kfp_mlflow.core.contracts import TaskType
from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.extensions import (
    BACKENDS,
    Registry,
    by_entry_point_name,
    load_object,
)

ENTRY_POINT_GROUP = "kfp_mlflow.families"
TASKS: tuple[TaskType, ...] = ("regression", "classification")


class ParamAlias(BaseModel):
    """A hyperparameter name the search space may use, mapped to the estimator's own."""

    model_config = ConfigDict(frozen=True)

    target: str
    #: ``inverse`` turns a regularisation strength into its reciprocal (``alpha`` → ``C``).
    transform: Literal["identity", "inverse"] = "identity"
    #: The tasks the alias applies to (elsewhere the name goes to the estimator unchanged).
    tasks: tuple[TaskType, ...] = TASKS

    def apply(self, value: Any) -> Any:
        return 1.0 / float(value) if self.transform == "inverse" else value


class RowCap(BaseModel):
    """How a family stays tractable on large training sets, declared rather than branched on.

    Above ``rows`` training rows, a candidate that leaves ``param`` unset gets it set so each
    fit sees about ``rows`` rows: the fraction ``rows / n_rows`` (``fraction=True``, e.g. a
    random forest's per-tree bootstrap sample ``max_samples``) or the count ``rows``. ``when``
    lists parameter values the cap needs (``{"bootstrap": True}``: without bootstrap there is
    no sample to cap); a candidate that sets one of them otherwise keeps the uncapped fit. The
    train step logs the value it applied (``effective.<param>``), so a run says what it did.
    """

    model_config = ConfigDict(frozen=True)

    param: str
    rows: int = Field(gt=0)
    fraction: bool = True
    when: dict[str, Any] = Field(default_factory=dict)

    def value(self, params: dict[str, Any], n_rows: int) -> float | int | None:
        """The value to set, or None when the cap does not apply to ``params`` at ``n_rows``."""
        if n_rows <= self.rows or self.param in params:
            return None
        if any(name in params and params[name] != value for name, value in self.when.items()):
            return None
        return round(self.rows / n_rows, 6) if self.fraction else self.rows


class Family(BaseModel):
    """One model family. Plain data: a plugin declares it, no subclassing needed."""

    model_config = ConfigDict(frozen=True)

    name: str
    #: ``module:Class`` of the estimator for each task; None where the family has none.
    regressor: str | None = None
    classifier: str | None = None
    aliases: dict[str, ParamAlias] = Field(default_factory=dict)
    #: Parameters set unless the candidate gives them, per task (``{"classification": {...}}``).
    defaults: dict[TaskType, dict[str, Any]] = Field(default_factory=dict)
    #: Parameters the estimator takes through ``**kwargs`` (get_params does not list them).
    extra_params: tuple[str, ...] = ()
    #: The estimator parameter that takes the pipeline's seed, when the estimator has it.
    seed_param: str = "random_state"
    #: Bounds on fitting cost for large training sets (see :class:`RowCap`).
    row_caps: tuple[RowCap, ...] = ()
    #: With ``onehot`` inputs, above this many training rows the encoded matrix may stay
    #: sparse (scipy CSR, when under 30% non-zero), for estimators that take sparse input: a
    #: dense one-hot copy of 800,000 rows peaked at 2.6 GB. None: always dense.
    sparse_above_rows: int | None = None
    #: Inputs: ``onehot`` (impute, scale, one-hot: linear models), ``ordinal`` (impute, ordinal
    #: codes: tree ensembles, memory bounded by the number of columns), ``none`` (the family
    #: encodes its own inputs, e.g. a Spark ML pipeline), or ``module:function``, a factory
    #: returning a scikit-learn transformer (a candidate may choose one, see Candidate).
    preprocessing: str = "onehot"
    #: ``module:Class`` of a scikit-learn meta-estimator the classifier is wrapped in when the
    #: estimator only takes integer labels (it then sees 0/1 targets and classes_ stay labels).
    classifier_wrapper: str | None = None
    #: Types a saved model of this family holds beyond skops's safe defaults, reviewed once.
    trusted_types: tuple[str, ...] = ()
    #: Distributions the family needs where it trains and where its model is served.
    requirements: tuple[str, ...] = ()
    #: ``module:attribute`` of the :class:`Backend` that fits and saves it.
    backend: str = "kfp_mlflow.models.sklearn_backend:SKLEARN"
    #: The extra that installs ``requirements`` (named in the error when they are missing).
    extra: str | None = None
    #: ``module:function`` of an ONNX converter for the family's estimators, registered with
    #: skl2onnx so the whole pipeline (encoding + estimator) converts into one graph (onnxmltools'
    #: ``convert_xgboost``...); None when skl2onnx converts the estimator itself or cannot.
    #: Needs the ``onnx`` extra; only ``kfp-mlflow export-onnx`` imports it.
    onnx_converter: str | None = None
    description: str = ""

    def estimator_path(self, task: str) -> str:
        path = self.regressor if task == "regression" else self.classifier
        if path is None:
            raise ConfigError(
                f"candidates: family {self.name!r} has no {task} model",
                hint="choose a family for this task, or set task explicitly",
            )
        return path

    def estimator_class(self, task: str) -> type:
        self.check_installed()
        return load_object(self.estimator_path(task), f"family {self.name!r}")  # type: ignore[no-any-return]

    def resolve_params(self, params: dict[str, Any], task: str) -> dict[str, Any]:
        """The candidate's parameters in the estimator's own names, defaults filled in."""
        resolved = dict(self.defaults.get(task, {}))  # type: ignore[call-overload]
        for name, value in params.items():
            alias = self.aliases.get(name)
            if alias is not None and task in alias.tasks:
                resolved[alias.target] = alias.apply(value)
            else:
                resolved[name] = value
        return resolved

    def large_data_params(self, params: dict[str, Any], n_rows: int) -> dict[str, Any]:
        """What the family's row caps add to resolved ``params`` for ``n_rows`` training rows
        (empty on small data and where the candidate chose the value itself)."""
        applied: dict[str, Any] = {}
        for cap in self.row_caps:
            value = cap.value(params, n_rows)
            if value is not None:
                applied[cap.param] = value
        return applied

    def check_installed(self) -> None:
        missing = [name for name in self.requirements if not _installed(name)]
        if missing:
            install = f"kfp-mlflow[{self.extra}]" if self.extra else " ".join(missing)
            raise ConfigError(
                f"candidates: family {self.name!r} needs {', '.join(missing)}, not installed",
                hint=f"pip install '{install}' where the tasks run",
            )

    def get_backend(self) -> Backend:
        """The backend ``backend`` names: a registered backend (``sklearn``, ``spark``, entry
        points of ``kfp_mlflow.backends``) or a ``module:attribute`` import path."""
        path = BACKENDS.resolve(self.backend)
        if path is None:
            raise ConfigError(
                f"candidates: family {self.name!r}: unknown backend {self.backend!r}",
                hint=f"one of {', '.join(BACKENDS.entries())} or an import path module:attribute",
            )
        return load_object(path, f"backend of family {self.name!r}")  # type: ignore[no-any-return]


class Backend(Protocol):
    """Fits and saves the models of a kind of family (scikit-learn, Spark ML...)."""

    def accepted_params(self, family: Family, task: str) -> set[str]:
        """Hyperparameters the task's estimator accepts (checked before any task runs)."""

    def check(self, family: Family, params: dict[str, Any], task: str, seed: int) -> None:
        """Raise :class:`ConfigError` if ``params`` (resolved) cannot work, without fitting."""

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
        """The fitted model; takes the raw feature columns."""

    def save(self, family: Family, model: Any, features: Any, path: str) -> None:
        """Save ``model`` as an MLflow model directory at ``path``."""


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


# Reviewed allowlists. skops already trusts numpy arrays, builtins and every scikit-learn
# estimator; these are what each family's fitted pipeline holds beyond that (checked by
# tests/unit/test_families.py against real fitted models).
#  - numpy.dtype: dtypes stored by encoders and imputers.
#  - sklearn.tree._tree.Tree, TreePredictor: fitted trees, restored from arrays.
#  - xgboost Booster / lightgbm Booster: restored through their own __setstate__ from the
#    libraries' native model formats (xgboost's UBJSON buffer, LightGBM's text model), which
#    are data parsed by the library, never pickle; the estimator classes are plain containers
#    of hyperparameters. collections.OrderedDict holds LightGBM's parameters.
_SKLEARN_TYPES = ("numpy.dtype", "sklearn.tree._tree.Tree")
_HIST_TYPES = ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",)


def _spark(name: str, regressor: str, classifier: str, **fields: Any) -> Family:
    aliases = {
        "max_depth": ParamAlias(target="maxDepth"),
        "n_estimators": ParamAlias(target="numTrees"),
        "max_iter": ParamAlias(target="maxIter"),
        "learning_rate": ParamAlias(target="stepSize"),
        "max_bins": ParamAlias(target="maxBins"),
        "alpha": ParamAlias(target="regParam"),
        "l1_ratio": ParamAlias(target="elasticNetParam"),
    }
    return Family(
        name=name,
        regressor=f"pyspark.ml.regression:{regressor}",
        classifier=f"pyspark.ml.classification:{classifier}",
        aliases=aliases,
        seed_param="seed",
        preprocessing="none",
        requirements=("pyspark",),
        backend="kfp_mlflow.models.spark_backend:SPARK",
        extra="spark",
        **fields,
    )


BUILTIN_FAMILIES: tuple[Family, ...] = (
    Family(
        name="linear",
        regressor="sklearn.linear_model:Ridge",
        classifier="sklearn.linear_model:LogisticRegression",
        # Logistic regression has no alpha; the search space speaks of one regularisation knob.
        aliases={"alpha": ParamAlias(target="C", transform="inverse", tasks=("classification",))},
        # Balanced class weights: on imbalanced data an unweighted model predicts the majority
        # class only (measured by bench/model_quality.py); roc_auc is unchanged or better.
        defaults={"classification": {"max_iter": 2000, "class_weight": "balanced"}},
        # Ridge (then sparse_cg, not Cholesky) and logistic regression (lbfgs) fit sparse
        # input to the same solution within their tolerance.
        sparse_above_rows=100_000,
        trusted_types=_SKLEARN_TYPES,
        description="Ridge / logistic regression on standardised, one-hot encoded inputs",
    ),
    Family(
        name="random_forest",
        regressor="sklearn.ensemble:RandomForestRegressor",
        classifier="sklearn.ensemble:RandomForestClassifier",
        # One core per task: kfp.local runs two tasks at a time on these machines.
        # balanced_subsample, not balanced: scikit-learn 1.9's "balanced" fails on labels that
        # look like integers ("0", "1").
        defaults={
            "regression": {"n_jobs": 1},
            "classification": {"n_jobs": 1, "class_weight": "balanced_subsample"},
        },
        preprocessing="ordinal",
        # Each tree fits on a bootstrap sample of at most 50,000 rows: past that, more rows
        # per tree cost time linearly (200 trees on 800,000 rows ran over 10 minutes on one
        # core) for little accuracy, as each tree still sees a different sample.
        row_caps=(RowCap(param="max_samples", rows=50_000, when={"bootstrap": True}),),
        trusted_types=_SKLEARN_TYPES,
        description="scikit-learn random forest",
    ),
    Family(
        name="gradient_boosting",
        regressor="sklearn.ensemble:HistGradientBoostingRegressor",
        classifier="sklearn.ensemble:HistGradientBoostingClassifier",
        preprocessing="ordinal",
        trusted_types=_SKLEARN_TYPES + _HIST_TYPES,
        description="scikit-learn histogram gradient boosting",
    ),
    Family(
        name="xgboost",
        regressor="xgboost:XGBRegressor",
        classifier="xgboost:XGBClassifier",
        aliases={"max_iter": ParamAlias(target="n_estimators")},
        defaults={
            task: {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6, "n_jobs": 1}
            for task in TASKS
        },
        preprocessing="ordinal",
        # XGBClassifier takes only 0..k-1 labels; the wrapper keeps the labels in classes_.
        classifier_wrapper="sklearn.multiclass:OneVsRestClassifier",
        trusted_types=(
            *_SKLEARN_TYPES,
            "xgboost.core.Booster",
            "xgboost.sklearn.XGBRegressor",
            "xgboost.sklearn.XGBClassifier",
        ),
        requirements=("xgboost",),
        extra="xgboost",
        onnx_converter="onnxmltools.convert.xgboost.operator_converters.XGBoost:convert_xgboost",
        description="XGBoost gradient boosting (scikit-learn API)",
    ),
    Family(
        name="lightgbm",
        regressor="lightgbm:LGBMRegressor",
        classifier="lightgbm:LGBMClassifier",
        aliases={"max_iter": ParamAlias(target="n_estimators")},
        defaults={
            task: {"n_estimators": 300, "learning_rate": 0.05, "n_jobs": 1, "verbose": -1}
            for task in TASKS
        },
        extra_params=("verbose",),
        preprocessing="ordinal",
        trusted_types=(
            *_SKLEARN_TYPES,
            "collections.OrderedDict",
            "lightgbm.basic.Booster",
            "lightgbm.sklearn.LGBMRegressor",
            "lightgbm.sklearn.LGBMClassifier",
        ),
        requirements=("lightgbm",),
        extra="lightgbm",
        onnx_converter="onnxmltools.convert.lightgbm.operator_converters.LightGbm:convert_lightgbm",
        description="LightGBM gradient boosting (scikit-learn API)",
    ),
    _spark(
        "spark_random_forest",
        "RandomForestRegressor",
        "RandomForestClassifier",
        description="Spark ML StringIndexer + VectorAssembler + random forest",
    ),
    _spark(
        "spark_gbt",
        "GBTRegressor",
        "GBTClassifier",
        description="Spark ML StringIndexer + VectorAssembler + gradient-boosted trees",
    ),
    _spark(
        "spark_linear",
        "LinearRegression",
        "LogisticRegression",
        description="Spark ML StringIndexer + VectorAssembler + linear/logistic regression",
    ),
)


def _declared_families(entry_point: metadata.EntryPoint) -> dict[str, Family]:
    """An entry point's object: a Family, a list of them, or a callable returning either."""
    loaded = entry_point.load()
    declared = loaded() if callable(loaded) and not isinstance(loaded, Family) else loaded
    found: dict[str, Family] = {}
    for family in declared if isinstance(declared, (list, tuple)) else [declared]:
        if not isinstance(family, Family):
            raise TypeError(f"{type(family).__name__} is not a kfp_mlflow Family")
        if family.name in found:
            raise ValueError(f"family {family.name!r} is already defined")
        found[family.name] = family
    return found


@cache
def registered_families() -> dict[str, Family]:
    """Built-in families, then those installed distributions declare (built-ins win)."""
    return FAMILIES.entries()


def available_families() -> list[str]:
    """Names of the registered families whose packages are installed here."""
    return [
        name
        for name, family in registered_families().items()
        if all(_installed(module) for module in family.requirements)
    ]


def get_family(name: str) -> Family:
    """The family a candidate names: a registered name or a ``module:Class`` import path."""
    found = FAMILIES.resolve(name, registered_families())
    if found is not None:
        return found
    raise ConfigError(
        f"candidates: unknown family {name!r}",
        hint=f"choose one of {', '.join(available_families())} or an import path module:Class",
    )


def _import_path_family(path: str) -> Family:
    for family in registered_families().values():
        if path == family.regressor:
            return family.model_copy(update={"name": path, "classifier": None})
        if path == family.classifier:
            return family.model_copy(update={"name": path, "regressor": None})
    cls = load_object(path, f"family {path!r}")
    if not isinstance(cls, type) or not hasattr(cls, "get_params"):
        raise ConfigError(
            f"candidates: family {path!r} is not a scikit-learn-compatible estimator class",
            hint="it needs get_params/set_params/fit/predict",
        )
    task = "classification" if getattr(cls, "_estimator_type", None) == "classifier" else None
    if task is None:
        try:
            from sklearn.base import is_classifier

            task = "classification" if is_classifier(cls()) else "regression"
        except Exception:
            task = "regression"
    return Family(
        name=path,
        regressor=path if task == "regression" else None,
        classifier=path if task == "classification" else None,
        trusted_types=(*_SKLEARN_TYPES, f"{cls.__module__}.{cls.__qualname__}"),
        preprocessing="onehot",
        requirements=(path.partition(":")[0].split(".")[0],),
    )


FAMILIES: Registry[Family] = Registry(
    kind="family",
    group=ENTRY_POINT_GROUP,
    builtins=lambda: {family.name: family for family in BUILTIN_FAMILIES},
    unpack=_declared_families,
    from_path=_import_path_family,
)


#: MLflow flavors whose pyfunc model returns predictions only, and the adapter
#: (``module:function`` taking the model directory) that loads it and also gives evaluate the
#: class probabilities, so probabilistic metrics (roc_auc, log_loss) compare across families.
SCORER_ADAPTERS: dict[str, str] = {"spark": "kfp_mlflow.models.spark_backend:load_spark_scorer"}
#: ... and those installed distributions add (entry-point group ``kfp_mlflow.scorer_adapters``,
#: named by flavor).
SCORERS: Registry[str] = Registry(
    kind="scorer adapter",
    group="kfp_mlflow.scorer_adapters",
    builtins=lambda: SCORER_ADAPTERS,
    unpack=by_entry_point_name,
)


def scorer_for(model_dir: str) -> Any:
    """What ``evaluate`` scores: the flavor's adapter; else the framework's own object when it
    has the scikit-learn API (classifiers give probabilities); else the pyfunc model."""
    from pathlib import Path

    import mlflow.pyfunc
    import yaml

    mlmodel = Path(model_dir) / "MLmodel"
    flavors = (
        (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}) if mlmodel.is_file() else {}
    )
    for flavor, adapter in SCORERS.entries().items():
        if flavor in flavors:
            return load_object(adapter, f"scorer of flavor {flavor!r}")(model_dir)
    pyfunc_model = mlflow.pyfunc.load_model(model_dir)
    try:
        raw = pyfunc_model.get_raw_model()
    except Exception:  # flavors without a raw model (custom pyfunc)
        raw = None
    return raw if raw is not None and hasattr(raw, "predict") else pyfunc_model
