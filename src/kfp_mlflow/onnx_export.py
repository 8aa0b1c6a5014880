"""ONNX export of a registered scikit-learn version, with a parity check against the original.

The .onnx file and the parity metrics are logged on the version's own training run, next to
the MLflow model, so "which runtime-neutral file belongs to which version" needs no new store.
Needs the optional extra ``kfp-mlflow[onnx]`` (skl2onnx + onnxruntime).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_mlflow.exceptions import ConfigError, DataError, ReproducibilityError
from kfp_mlflow.settings import Settings, get_settings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Regression outputs may differ by float rounding only; classification labels must be identical.
REGRESSION_TOLERANCE = 1e-4
ARTIFACT_PATH = "onnx"
METRIC_MAX_ABS_DIFF = "onnx_parity_max_abs_diff"
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
    label_mismatches: int = 0
    artifact_uri: str | None = None
    run_id: str | None = None

    @property
    def passed(self) -> bool:
        if self.task == "classification":
            return self.label_mismatches == 0
        return self.max_abs_diff <= REGRESSION_TOLERANCE

    def summary(self) -> str:
        if not self.exported:
            return f"not exported: {self.reason}"
        parity = (
            f"{self.label_mismatches} label mismatches"
            if self.task == "classification"
            else f"max abs diff {self.max_abs_diff:.3g} (≤ {REGRESSION_TOLERANCE:g})"
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

    from kfp_mlflow.tracking import mlflow_errors, tracking_client

    settings = settings or get_settings()
    uri = f"models:/{model_name}/{version}"
    converters = _converters()
    client = tracking_client(settings)
    with mlflow_errors(f"read {uri}"):
        registered = client.get_model_version(model_name, version)
        model = _load_sklearn(uri, mlflow.sklearn)
    if model is None:
        return OnnxExport(uri, exported=False, reason=f"{uri} has no scikit-learn flavor")
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
        label_mismatches=parity.label_mismatches, artifact_uri=artifact_uri, run_id=run_id,
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
    return convert_sklearn, (FloatTensorType, StringTensorType)


def _load_sklearn(uri: str, flavor: Any) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return flavor.load_model(uri)
    except MlflowException as error:
        if "flavor" in error.message.lower():
            return None
        raise


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
        return _convert(model, features, converters or _converters()), ""
    except Exception as error:  # skl2onnx raises bare RuntimeError/NotImplementedError kinds
        family = type(getattr(model, "steps", [[None, model]])[-1][1]).__name__
        text = str(error).strip()
        first = text.splitlines()[0][:200] if text else type(error).__name__
        return None, f"skl2onnx cannot convert {family}: {first}"


def _convert(model: Any, features: pd.DataFrame, converters: tuple[Any, Any]) -> Any:
    convert_sklearn, (floats, string) = converters
    if _has_missing_indicators(model):
        # skl2onnx drops SimpleImputer's indicator columns: the graph would read features that
        # are not there (onnxruntime fails at run time). Refuse before, in one line.
        raise NotImplementedError("missing-value indicator columns (tree encodings) are lost")
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    initial_types = [
        (column, floats([None, 1]) if _is_numeric(features[column]) else string([None, 1]))
        for column in features.columns
    ]
    # float32 inputs: onnxruntime's Imputer and tree ensembles have no double kernels. That costs
    # ~1e-7 relative error, which the parity check measures (a target in the millions would fail
    # the 1e-4 tolerance and say so). Classifiers output plain labels (no ZipMap of probabilities).
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


def _compare(uri: str, task: str, expected: np.ndarray, actual: np.ndarray) -> _Parity:
    import numpy as np

    if len(expected) != len(actual):
        raise ReproducibilityError(
            f"ONNX export of {uri} returned {len(actual)} predictions for {len(expected)} rows"
        )
    if task == "classification":
        mismatches = int(np.sum(np.asarray(expected).astype(str) != np.asarray(actual).astype(str)))
        return _Parity(0.0, mismatches, mismatches == 0)
    diff = float(np.max(np.abs(np.asarray(expected, float) - np.asarray(actual, float))))
    return _Parity(diff, 0, diff <= REGRESSION_TOLERANCE)


def _has_missing_indicators(model: Any) -> bool:
    from sklearn.impute import SimpleImputer

    found: list[bool] = []

    def visit(node: Any) -> None:
        if isinstance(node, SimpleImputer):
            found.append(bool(node.add_indicator))
        for child in getattr(node, "steps", []):
            visit(child[1])
        for child in getattr(node, "transformers_", getattr(node, "transformers", [])):
            visit(child[1])

    visit(model)
    return any(found)
