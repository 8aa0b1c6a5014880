"""ONNX export of a registered scikit-learn version, with a parity check against the original.

The .onnx file and the parity metrics are logged on the version's own training run, next to
the MLflow model, so "which runtime-neutral file belongs to which version" needs no new store.
Needs the optional extra ``kfp-mlflow[onnx]`` (skl2onnx + onnxruntime + onnxmltools). Families
whose estimator skl2onnx does not know declare their converter (``Family.onnx_converter``,
onnxmltools' for xgboost and lightgbm); it is registered with skl2onnx so the encoding and the
booster convert into one graph.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_mlflow.core.exceptions import ConfigError, DataError, ReproducibilityError
from kfp_mlflow.core.settings import Settings, get_settings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Regression outputs may differ by float rounding only; classification labels must be identical.
# A row passes when |onnx - original| <= REGRESSION_TOLERANCE + REGRESSION_RELATIVE_TOLERANCE *
# |original|. The relative part exists because ONNX-ML tree ensembles (opset 3) output float32
# and sum their trees in another order than the library: measured ~1.1-1.4e-6 relative (2.3e-4
# absolute on the diabetes target, 300 trees) for xgboost and lightgbm, with the float32 input
# cast changing neither booster's predictions (xgboost casts to float32 itself; lightgbm's
# thresholds fall between training values). 1e-5 is ~84 float32 epsilons: rounding passes, a
# wrong leaf or a lost feature does not (tests/unit/test_onnx_export.py).
REGRESSION_TOLERANCE = 1e-4
REGRESSION_RELATIVE_TOLERANCE = 1e-5
ARTIFACT_PATH = "onnx"
METRIC_MAX_ABS_DIFF = "onnx_parity_max_abs_diff"
METRIC_MAX_REL_DIFF = "onnx_parity_max_rel_diff"
METRIC_LABEL_MISMATCHES = "onnx_parity_label_mismatches"
METRIC_PASSED = "onnx_parity_passed"


@dataclass(frozen=True)
class OnnxExport:
    """What an export produced; ``exported`` is False with ``reason`` when the family cannot be."""

    model_uri: str
    exported: bool
    reason: str = ""
    task: str = ""
    rows: int = 0
    max_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    label_mismatches: int = 0
    artifact_uri: str | None = None
    run_id: str | None = None
    within_tolerance: bool = True

    @property
    def passed(self) -> bool:
        if self.task == "classification":
            return self.label_mismatches == 0
        return self.within_tolerance

    def summary(self) -> str:
        if not self.exported:
            return f"not exported: {self.reason}"
        parity = (
            f"{self.label_mismatches} label mismatches"
            if self.task == "classification"
            else f"max abs diff {self.max_abs_diff:.3g}, max rel diff {self.max_rel_diff:.3g} "
            f"(≤ {REGRESSION_TOLERANCE:g} + {REGRESSION_RELATIVE_TOLERANCE:g}·|y|)"
        )
        return f"ONNX parity on {self.rows} test rows: {parity}; logged at {self.artifact_uri}"


def export_onnx(
    model_name: str,
    version: str,
    *,
    test_data: str | Path | pd.DataFrame,
    settings: Settings | None = None,
) -> OnnxExport:
    """Convert ``models:/<model_name>/<version>`` to ONNX, compare its predictions with the
    original's on ``test_data`` and log the file and the comparison on the version's run.

    A family skl2onnx cannot convert returns ``exported=False`` with the reason (no crash); a
    converted model that predicts differently raises ReproducibilityError after logging.
    """
    import mlflow.sklearn

    from kfp_mlflow.tracking.runs import mlflow_errors, tracking_client, tracking_uri_env

    settings = settings or get_settings()
    uri = f"models:/{model_name}/{version}"
    converters = _converters()
    client = tracking_client(settings)
    with mlflow_errors(f"read {uri}"):
        registered = client.get_model_version(model_name, version)
        # models:/ resolves through the process-wide URI: the settings' server, not a default.
        with tracking_uri_env(settings.tracking_uri):
            model = _load_sklearn(uri, mlflow.sklearn)
            flavors = [] if model is not None else _flavors(uri)
    if model is None:
        # A Spark ML pipeline, for one: no converter reads it (onnxmltools' Spark ML one covers
        # few stages and needs the JVM), so the family is not exported — said, not failed.
        saved_as = f" (saved as {', '.join(flavors)})" if flavors else ""
        reason = (
            f"{uri} has no scikit-learn flavor{saved_as}; ONNX export covers scikit-learn "
            "pipelines, xgboost and lightgbm included"
        )
        return OnnxExport(uri, exported=False, reason=reason)
    features = _features(test_data, model)
    onnx_model, reason = convert(model, features, converters)
    if onnx_model is None:
        return OnnxExport(uri, exported=False, reason=reason)
    task = "classification" if hasattr(model, "predict_proba") else "regression"
    expected = model.predict(features)
    actual = predict_onnx(onnx_model.SerializeToString(), features)
    parity = _compare(uri, task, expected, actual)
    run_id = registered.run_id
    with mlflow_errors(f"log the ONNX export of {uri}"), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model_name}-v{version}.onnx"
        path.write_bytes(onnx_model.SerializeToString())
        metrics = {
            METRIC_MAX_ABS_DIFF: parity.max_abs_diff,
            METRIC_MAX_REL_DIFF: parity.max_rel_diff,
            METRIC_LABEL_MISMATCHES: float(parity.label_mismatches),
            METRIC_PASSED: 1.0 if parity.passed else 0.0,
        }
        if run_id:
            for key, value in metrics.items():
                client.log_metric(run_id, key, value)
            client.log_artifact(run_id, str(path), ARTIFACT_PATH)
            client.set_model_version_tag(model_name, version, "kfp_mlflow.onnx", path.name)
    artifact_uri = f"runs:/{run_id}/{ARTIFACT_PATH}/{path.name}" if run_id else None
    result = OnnxExport(
        uri, exported=True, task=task, rows=len(features), max_abs_diff=parity.max_abs_diff,
        max_rel_diff=parity.max_rel_diff, label_mismatches=parity.label_mismatches,
        artifact_uri=artifact_uri, run_id=run_id, within_tolerance=parity.passed,
    )  # fmt: skip
    if not result.passed:
        raise ReproducibilityError(
            f"ONNX export of {uri} does not predict like the original: {result.summary()}",
            hint="the metrics are logged on the run; serve the MLflow model instead",
        )
    return result


def predict_onnx(model_bytes: bytes, features: pd.DataFrame) -> np.ndarray:
    """Predictions of a converted pipeline with onnxruntime (first output: labels or values)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    first: np.ndarray = session.run(None, onnx_inputs(features))[0]
    # Regressors answer [n, 1], classifiers [n]: one value per row either way.
    return first.reshape(len(features)) if first.ndim > 1 and first.shape[1] == 1 else first


def onnx_inputs(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """One [n, 1] input per raw column, as the converted ColumnTransformer expects them."""
    import numpy as np

    inputs = {}
    for column in features.columns:
        values = features[column].to_numpy()
        if _is_numeric(features[column]):
            inputs[column] = values.astype(np.float32).reshape(-1, 1)
        else:
            inputs[column] = values.astype(str).astype(object).reshape(-1, 1)
    return inputs


def _converters() -> tuple[Any, Any]:
    try:
        import onnxruntime  # noqa: F401  (the parity check needs it too)
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError as error:
        raise ConfigError(
            f"ONNX export needs skl2onnx and onnxruntime ({error.name} is missing)",
            hint="pip install 'kfp-mlflow[onnx]'",
        ) from error
    _register_imputer_with_indicator()
    return convert_sklearn, (FloatTensorType, StringTensorType)


def register_family_converters(model: Any) -> None:
    """Register with skl2onnx the converters the families declare (``Family.onnx_converter``)
    for the estimator classes ``model`` holds, so skl2onnx converts the whole pipeline.

    Only classes whose module is already imported are looked at: loading the model imported
    its framework, and an export must not import every installed framework.
    """
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from kfp_mlflow.core.extensions import load_object
    from kfp_mlflow.models.families import registered_families

    held = _estimator_types(model)
    for family in registered_families().values():
        if family.onnx_converter is None:
            continue
        for task, path in (("regression", family.regressor), ("classification", family.classifier)):
            if path is None or path.partition(":")[0] not in sys.modules:
                continue
            cls = load_object(path, f"family {family.name!r}")
            if cls not in held:
                continue
            converter = _family_converter(family.name, family.onnx_converter)
            if task == "classification":
                # The options skl2onnx's documentation gives for onnxmltools' classifiers:
                # ``zipmap`` is how we ask for plain probabilities, ``nocl`` for label indices.
                update_registered_converter(
                    cls, f"{family.name}_{cls.__name__}",
                    calculate_linear_classifier_output_shapes, converter,
                    options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
                )  # fmt: skip
            else:
                update_registered_converter(
                    cls, f"{family.name}_{cls.__name__}",
                    calculate_linear_regressor_output_shapes, converter,
                )  # fmt: skip


def _family_converter(family: str, reference: str) -> Any:
    import importlib

    module, _, attribute = reference.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ImportError as error:
        raise ConfigError(
            f"ONNX export of family {family!r} needs {module.split('.')[0]} "
            f"({error.name} is missing)",
            hint="pip install 'kfp-mlflow[onnx]'",
        ) from error
    except AttributeError:
        raise ConfigError(
            f"family {family!r}: onnx_converter {reference!r}: {module!r} has no {attribute!r}"
        ) from None


def _estimator_types(model: Any) -> set[type]:
    """Every class in the fitted model: pipeline steps, column transformers' parts and the
    estimators a meta-estimator wraps (xgboost's classifier sits in a OneVsRestClassifier)."""
    found: set[type] = set()
    seen: set[int] = set()

    def visit(node: Any) -> None:
        if node is None or isinstance(node, str) or id(node) in seen:
            return
        seen.add(id(node))
        found.add(type(node))
        children = [step[1] for step in getattr(node, "steps", [])]
        children += [part[1] for part in getattr(node, "transformers_", [])]
        children += [getattr(node, "estimator", None), *getattr(node, "estimators_", [])]
        for child in children:
            visit(child)

    visit(model)
    return found


_IMPUTER_REGISTERED: list[bool] = []


def _register_imputer_with_indicator() -> None:
    """skl2onnx's SimpleImputer converter drops ``add_indicator``'s columns (our tree encoding
    keeps missingness as a signal): the graph then reads features that are not there. This one
    appends them — IsNaN, the columns the fitted indicator kept, cast to float — and defers to
    skl2onnx's own converter when there are none."""
    if _IMPUTER_REGISTERED:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
    from sklearn.impute import SimpleImputer

    def shape(operator: Any) -> None:
        calculate_sklearn_imputer_output_shapes(operator)
        output = operator.outputs[0]
        columns = _indicator_columns(operator.raw_operator)
        if columns and output.type.shape[1] is not None:
            output.type.shape = [output.type.shape[0], output.type.shape[1] + len(columns)]

    update_registered_converter(SimpleImputer, "SklearnSimpleImputer", shape, _convert_imputer)
    _IMPUTER_REGISTERED.append(True)


def _indicator_columns(imputer: Any) -> list[int]:
    indicator = getattr(imputer, "indicator_", None)
    return [int(column) for column in indicator.features_] if indicator is not None else []


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    import numpy as np
    from onnx import TensorProto
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    imputer = operator.raw_operator
    columns = _indicator_columns(imputer)
    if not columns:
        convert_sklearn_imputer(scope, operator, container)
        return
    missing = imputer.missing_values
    if not isinstance(operator.inputs[0].type, FloatTensorType) or not (
        isinstance(missing, float) and np.isnan(missing)
    ):
        raise NotImplementedError(
            "missing-value indicator columns are converted for float inputs and NaN only"
        )

    def name(kind: str) -> str:
        return str(scope.get_unique_variable_name(kind))

    def node(op_type: str, inputs: list[str], output: str, **attrs: Any) -> None:
        container.add_node(
            op_type, inputs, [output], name=scope.get_unique_operator_name(op_type), **attrs
        )

    features = concatenate_variables(scope, operator.inputs, container)
    imputed, isnan, chosen, flags = name("imputed"), name("isnan"), name("chosen"), name("flags")
    node(
        "Imputer", [features], imputed, op_domain="ai.onnx.ml",
        imputed_value_floats=imputer.statistics_.astype(np.float32),
        replaced_value_float=float("nan"),
    )  # fmt: skip
    node("IsNaN", [features], isnan)
    indices = name("indicator_columns")
    container.add_initializer(indices, TensorProto.INT64, [len(columns)], columns)
    node("Gather", [isnan, indices], chosen, axis=1)
    node("Cast", [chosen], flags, to=TensorProto.FLOAT)
    node("Concat", [imputed, flags], operator.outputs[0].full_name, axis=1)


def _load_sklearn(uri: str, flavor: Any) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return flavor.load_model(uri)
    except MlflowException as error:
        if "flavor" in error.message.lower():
            return None
        raise


def _flavors(uri: str) -> list[str]:
    from mlflow.models import get_model_info

    return sorted(set(get_model_info(uri).flavors) - {"python_function"})


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def _features(test_data: str | Path | pd.DataFrame, model: Any) -> pd.DataFrame:
    """The model's input columns from the test split; the target and extra columns are dropped."""
    import pandas as pd

    if isinstance(test_data, pd.DataFrame):
        frame = test_data
    else:
        path = Path(test_data)
        if not path.exists():
            raise DataError(f"--test-data: {path} does not exist")
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    columns = list(getattr(model, "feature_names_in_", frame.columns))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"--test-data: columns {missing} the model needs are missing")
    if frame.empty:
        raise DataError("--test-data: no rows to compare predictions on")
    return frame[columns]


def convert(
    model: Any, features: pd.DataFrame, converters: tuple[Any, Any] | None = None
) -> tuple[Any, str]:
    """(ONNX model, "") or (None, why skl2onnx cannot convert it, in one line)."""
    try:
        converters = converters or _converters()
        register_family_converters(model)
        return _convert(model, features, converters), ""
    except ConfigError:
        raise
    except Exception as error:  # skl2onnx raises bare RuntimeError/NotImplementedError kinds
        family = type(getattr(model, "steps", [[None, model]])[-1][1]).__name__
        text = str(error).strip()
        first = text.splitlines()[0][:200] if text else type(error).__name__
        return None, f"skl2onnx cannot convert {family}: {first}"


def _convert(model: Any, features: pd.DataFrame, converters: tuple[Any, Any]) -> Any:
    convert_sklearn, (floats, string) = converters
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    initial_types = [
        (column, floats([None, 1]) if _is_numeric(features[column]) else string([None, 1]))
        for column in features.columns
    ]
    # float32 inputs: onnxruntime's Imputer and ONNX-ML tree ensembles have no double kernels
    # (nor do onnxmltools' converters emit any); the parity check measures what that costs.
    # Classifiers output plain labels (no ZipMap of probabilities).
    return convert_sklearn(
        model,
        initial_types=initial_types,
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={type(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None,
    )


@dataclass(frozen=True)
class _Parity:
    max_abs_diff: float
    label_mismatches: int
    passed: bool
    max_rel_diff: float = 0.0


def _compare(uri: str, task: str, expected: np.ndarray, actual: np.ndarray) -> _Parity:
    import numpy as np

    if len(expected) != len(actual):
        raise ReproducibilityError(
            f"ONNX export of {uri} returned {len(actual)} predictions for {len(expected)} rows"
        )
    if task == "classification":
        mismatches = int(np.sum(np.asarray(expected).astype(str) != np.asarray(actual).astype(str)))
        return _Parity(0.0, mismatches, mismatches == 0)
    original = np.asarray(expected, float)
    diff = np.abs(original - np.asarray(actual, float))
    allowed = REGRESSION_TOLERANCE + REGRESSION_RELATIVE_TOLERANCE * np.abs(original)
    relative = diff / np.maximum(np.abs(original), np.finfo(np.float32).tiny)
    # NaN (a broken graph) fails: comparisons with NaN are False.
    passed = bool(np.all(diff <= allowed))
    return _Parity(float(np.max(diff)), 0, passed, float(np.max(relative)))
