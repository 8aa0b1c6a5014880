"""Read, validate, split and fingerprint tabular datasets.

A dataset is named by a URI: a local CSV/Parquet path, ``s3://bucket/key`` or
``minio://bucket/key`` (KFP's own scheme for its object store), or ``sklearn://<name>`` for a
dataset that ships inside scikit-learn (so the default run needs no download, on a laptop or in
the component image).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from kfp_mlflow.exceptions import ConfigError, DataError
from kfp_mlflow.settings import Settings, TaskType, get_settings

if TYPE_CHECKING:
    import pandas as pd

# The datasets scikit-learn ships, with a readable name for each target column.
BUNDLED_DATASETS: dict[str, tuple[str, str]] = {
    "diabetes": ("load_diabetes", "disease_progression"),
    "breast_cancer": ("load_breast_cancer", "diagnosis"),
    "wine": ("load_wine", "cultivar"),
    "iris": ("load_iris", "species"),
}

_READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".pq": "read_parquet"}

# A numeric target with at most this many distinct integer values is taken for class labels.
_MAX_INFERRED_CLASSES = 10


@dataclass(frozen=True)
class Split:
    """A deterministic train/test split and what describes it."""

    train: pd.DataFrame
    test: pd.DataFrame
    task: TaskType
    digest: str


def read_dataset(uri: str, settings: Settings | None = None) -> pd.DataFrame:
    """Load the dataset ``uri`` names into a DataFrame."""
    parsed = urlparse(uri)
    if parsed.scheme == "sklearn":
        return _read_bundled(parsed.netloc or parsed.path.strip("/"))
    if parsed.scheme in {"s3", "minio"}:
        return _read_object(parsed.netloc, parsed.path.lstrip("/"), uri, settings or get_settings())
    if parsed.scheme not in {"", "file"}:
        raise ConfigError(
            f"data: unsupported URI scheme {parsed.scheme!r} in {uri!r}",
            hint="use a local path, s3://bucket/key, minio://bucket/key or sklearn://<name>",
        )
    path = Path(parsed.path if parsed.scheme == "file" else uri)
    if not path.is_file():
        raise DataError(
            f"data: file not found: {path}", hint="check --data (a CSV or Parquet file path)"
        )
    return _parse(path.read_bytes(), path.suffix.lower(), str(path))


def _read_bundled(name: str) -> pd.DataFrame:
    if name not in BUNDLED_DATASETS:
        raise ConfigError(
            f"data: unknown bundled dataset sklearn://{name}",
            hint=f"choose one of {', '.join('sklearn://' + n for n in BUNDLED_DATASETS)}",
        )
    import sklearn.datasets

    loader, target = BUNDLED_DATASETS[name]
    # Raw (unscaled) values where scikit-learn offers them: the model does its own scaling.
    kwargs: dict[str, Any] = {"as_frame": True}
    if name == "diabetes":
        kwargs["scaled"] = False
    bunch = getattr(sklearn.datasets, loader)(**kwargs)
    frame = bunch.frame.rename(columns={"target": target})
    if name != "diabetes":  # class codes → the class names scikit-learn ships with them
        frame[target] = frame[target].map(dict(enumerate(bunch.target_names))).astype(str)
    return frame


def _read_object(bucket: str, key: str, uri: str, settings: Settings) -> pd.DataFrame:
    if not bucket or not key:
        raise ConfigError(f"data: {uri!r} must name a bucket and a key (s3://bucket/key)")
    if not settings.s3_endpoint_url:
        raise ConfigError(
            f"data: {uri!r} needs an S3 endpoint",
            hint="set MLFLOW_S3_ENDPOINT_URL (or AWS_ENDPOINT_URL), e.g. http://seaweedfs:9000",
        )
    from minio import Minio
    from minio.error import S3Error

    endpoint = urlparse(settings.s3_endpoint_url)
    client = Minio(
        endpoint.netloc,
        access_key=settings.s3_access_key.get_secret_value() if settings.s3_access_key else None,
        secret_key=settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None,
        secure=endpoint.scheme == "https",
    )
    try:
        response = client.get_object(bucket, key)
        try:
            payload = response.read()
        finally:
            response.close()
            response.release_conn()
    except S3Error as error:
        raise DataError(f"data: cannot read {uri}: {error.code} ({error.message})") from error
    except OSError as error:  # urllib3 connection errors
        raise DataError(
            f"data: object store at {settings.s3_endpoint_url} unreachable for {uri}: {error}"
        ) from error
    return _parse(payload, Path(key).suffix.lower(), uri)


def _parse(payload: bytes, suffix: str, source: str) -> pd.DataFrame:
    import pandas as pd

    reader = _READERS.get(suffix)
    if reader is None:
        raise ConfigError(f"data: {source} is neither .csv nor .parquet")
    try:
        frame: pd.DataFrame = getattr(pd, reader)(io.BytesIO(payload))
    except Exception as error:  # pandas and pyarrow raise many unrelated types here
        raise DataError(f"data: cannot parse {source} as {suffix[1:]}: {error}") from error
    return frame


def infer_task(target: pd.Series) -> TaskType:
    """Classification for labels (text, booleans, few integer values), regression otherwise."""
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    values = target.dropna()
    integral = bool((values == values.round()).all())
    if integral and values.nunique() <= _MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def validate(frame: pd.DataFrame, target: str, task: str, min_rows: int) -> TaskType:
    """Check the dataset can train a model; return the task type (given or inferred)."""
    import pandas as pd

    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise DataError(
            f"target: column {target!r} is not in the dataset",
            hint=f"choose --target from: {columns}",
        )
    labels = frame[target]
    if labels.isna().all():
        raise DataError(f"target: column {target!r} is empty (every value is null)")
    if labels.nunique(dropna=True) < 2:
        raise DataError(
            f"target: column {target!r} is constant ({labels.dropna().iloc[0]!r})",
            hint="a model cannot learn a target with a single value",
        )
    resolved = _resolve_task(task, labels, target)
    usable = int(labels.notna().sum())
    if usable < min_rows:
        raise DataError(
            f"data: {usable} rows with a {target!r} value, fewer than the {min_rows} required",
            hint="provide more rows or lower KFP_MLFLOW_MIN_ROWS",
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"data: no feature columns besides the target {target!r}")
    for column in features.columns:
        dtype = features[column].dtype
        supported = (
            pd.api.types.is_numeric_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_object_dtype(dtype)
            or pd.api.types.is_string_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype)
        )
        if not supported:
            raise DataError(
                f"data: column {column!r} has unsupported type {dtype}",
                hint="convert it to a number or text, or drop it",
            )
    return resolved


def _resolve_task(task: str, labels: pd.Series, target: str) -> TaskType:
    import pandas as pd

    if task in ("", None):
        return infer_task(labels)
    if task not in ("regression", "classification"):
        raise ConfigError(f"task: {task!r} is not 'regression' or 'classification'")
    if task == "regression" and not (
        pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    ):
        raise DataError(
            f"target: column {target!r} is not numeric ({labels.dtype}), so it cannot be a "
            "regression target",
            hint="use --task classification, or choose a numeric --target",
        )
    return task  # type: ignore[return-value]


def digest(frame: pd.DataFrame) -> str:
    """A content digest of the rows and columns, independent of file format and row index."""
    import pandas as pd

    hasher = hashlib.sha256()
    hasher.update("\x1f".join(f"{c}:{t}" for c, t in frame.dtypes.astype(str).items()).encode())
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return hasher.hexdigest()


def split(frame: pd.DataFrame, target: str, task: TaskType, seed: int, test_size: float) -> Split:
    """Drop rows without a target and split deterministically (stratified for classes)."""
    from sklearn.model_selection import train_test_split

    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    stratify = None
    if task == "classification":
        counts = frame[target].value_counts()
        if counts.min() >= 2 and len(counts) <= round(len(frame) * test_size):
            stratify = frame[target]
    try:
        train, test = train_test_split(
            frame, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as error:
        raise DataError(f"data: cannot split {len(frame)} rows: {error}") from error
    if len(test) < 2 or len(train) < 2:
        raise DataError(
            f"data: the split leaves {len(train)} train and {len(test)} test rows",
            hint="provide more rows or change KFP_MLFLOW_TEST_SIZE",
        )
    return Split(
        train=train.reset_index(drop=True),
        test=test.reset_index(drop=True),
        task=task,
        digest=digest(frame),
    )


def schema(frame: pd.DataFrame) -> dict[str, str]:
    """Column name → dtype, as strings (for artifact metadata)."""
    return {str(column): str(dtype) for column, dtype in frame.dtypes.items()}
