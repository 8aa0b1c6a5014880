"""Read, validate, profile, split and fingerprint tabular datasets.

A dataset is named by a URI: a local CSV/Parquet file or directory of part files,
``s3://bucket/key`` or ``minio://bucket/key`` (KFP's own scheme for its object store), any other
fsspec URL (:mod:`kfp_mlflow.data.sources` reads them all), or ``sklearn://<name>`` for a dataset
that
ships inside scikit-learn (so the default run needs no download, on a laptop or in the component
image).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from kfp_mlflow.core.contracts import TaskType
from kfp_mlflow.core.exceptions import ConfigError, DataError
from kfp_mlflow.core.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd

    from kfp_mlflow.core.contracts import DatasetInfo

# The datasets scikit-learn ships, with a readable name for each target column.
BUNDLED_DATASETS: dict[str, tuple[str, str]] = {
    "diabetes": ("load_diabetes", "disease_progression"),
    "breast_cancer": ("load_breast_cancer", "diagnosis"),
    "wine": ("load_wine", "cultivar"),
    "iris": ("load_iris", "species"),
}

# A numeric target with at most this many distinct integer values is taken for class labels.
_MAX_INFERRED_CLASSES = 10
# Whole-number labels with more distinct values than this and than half the rows: continuous.
_MAX_CLASSES = 100
# sklearn's stratified split needs two rows of a class to put one on each side.
_MIN_CLASS_ROWS = 2
# A text column with more distinct values than this is dropped rather than one-hot encoded.
DEFAULT_MAX_CATEGORIES = 1000
# Under this many rows every column is kept: uniqueness says nothing about so few rows.
_MIN_PROFILE_ROWS = 20
# From this many rows an integer column unique per row is an identifier whatever its name.
_MIN_ANONYMOUS_ID_ROWS = 1000


@dataclass(frozen=True)
class SplitRows:
    """A split as a training step uses it: the model's inputs, the labels, and the record."""

    features: pd.DataFrame
    labels: pd.Series
    info: DatasetInfo


def read_split(artifact: Any, *, consumer: str = "") -> SplitRows:
    """Read a ``kfp_mlflow.dataset/v1`` split (``Input[Dataset]``, e.g. preprocess's
    ``train_data``) as our train step reads it: the target apart, text columns as plain
    strings (what the saved signature and serving will see), class labels as text.

    ``consumer`` names your step in the error when the artifact carries no dataset record.
    """
    import pandas as pd

    from kfp_mlflow.core.contracts import DatasetInfo

    info = DatasetInfo.read(artifact, input_name="data", consumer=consumer or "read_split")
    frame = pd.read_parquet(artifact.path)
    labels = frame.pop(info.target)
    if info.task == "classification":
        labels = labels.astype(str)
    return SplitRows(features=as_model_input(frame), labels=labels, info=info)


@dataclass(frozen=True)
class Split:
    """A deterministic train/test split and what describes it."""

    train: pd.DataFrame
    test: pd.DataFrame
    task: TaskType
    digest: str


def read_dataset(
    uri: str, settings: Settings | None = None, *, columns: list[str] | None = None
) -> pd.DataFrame:
    """Load the dataset ``uri`` names into a DataFrame (only ``columns``, when given).

    ``uri`` is a CSV or Parquet file, a directory of Parquet part files (local or in an object
    store), any fsspec URL, or ``sklearn://<name>``; see :mod:`kfp_mlflow.data.sources`.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "sklearn":
        frame = _read_bundled(parsed.netloc or parsed.path.strip("/"))
        return frame if columns is None else frame[columns]
    if (
        parsed.scheme == "runs"
    ):  # a snapshot in MLflow's artifact store (kfp_mlflow.tracking.snapshots)
        import tempfile

        from kfp_mlflow.tracking.snapshots import download

        settings = settings or get_settings()
        with tempfile.TemporaryDirectory() as folder:
            local = download(uri, settings.tracking_uri, Path(folder))
            return read_dataset(str(local), settings, columns=columns)
    from kfp_mlflow.data.sources import read_frame, resolve

    return read_frame(resolve(uri, settings or get_settings()), columns)


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


def validate(
    frame: pd.DataFrame,
    target: str,
    task: str,
    min_rows: int,
    *,
    test_size: float | None = None,
) -> TaskType:
    """Check the dataset can train a model; return the task type (given or inferred).

    Every check a training step would otherwise hit late, as a raw library error: no rows, a
    missing/empty/constant target, a continuous target under ``classification``, classes too
    small for a stratified split (with ``test_size``, also too many classes for the test rows),
    too few rows, unsupported column types and infinite values.
    """
    if len(frame) == 0:
        raise DataError(
            "data: the dataset has no rows", hint="point --data at a file with data rows"
        )
    _refuse_duplicate_columns(frame)
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
            f"target: column {target!r} is constant ({_show(labels.dropna().iloc[0])}, one class)",
            hint="a model cannot learn a target with a single value",
        )
    resolved = _resolve_task(task, labels, target)
    usable = int(labels.notna().sum())
    if usable < min_rows:
        raise DataError(
            f"data: {usable} rows with a {target!r} value, fewer than the {min_rows} required",
            hint="provide more rows or lower KFP_MLFLOW_MIN_ROWS",
        )
    features = [column for column in frame.columns if column != target]
    if not features:
        raise DataError(f"data: no feature columns besides the target {target!r}")
    for column in features:
        if not _supported(frame[column].dtype):
            raise DataError(
                f"data: column {column!r} has unsupported type {frame[column].dtype}",
                hint="convert it to a number, text or a timestamp, or drop it",
            )
    _refuse_infinite(frame, features, target, resolved)
    if resolved == "classification":
        check_classes(labels, target, test_size)
    return resolved


def _supported(dtype: Any) -> bool:
    import pandas as pd

    api = pd.api.types
    if api.is_timedelta64_dtype(dtype) or api.is_complex_dtype(dtype):
        return False
    return bool(
        api.is_numeric_dtype(dtype)
        or api.is_bool_dtype(dtype)
        or api.is_object_dtype(dtype)
        or api.is_string_dtype(dtype)
        or api.is_datetime64_any_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _refuse_duplicate_columns(frame: pd.DataFrame) -> None:
    repeated = frame.columns[frame.columns.duplicated()].unique()
    if len(repeated):
        raise DataError(
            f"data: duplicate column names: {', '.join(repr(str(c)) for c in repeated)}",
            hint="rename the columns so each name is unique",
        )


def _refuse_infinite(frame: pd.DataFrame, features: list[str], target: str, task: TaskType) -> None:
    import numpy as np
    import pandas as pd

    checked = [*features, target] if task == "regression" else features
    found: dict[str, int] = {}
    for column in checked:
        values = frame[column]
        # Only float columns can hold ±inf; integer, text and bool columns are skipped cheaply.
        if not pd.api.types.is_float_dtype(values.dtype):
            continue
        count = int(np.isinf(values.to_numpy(dtype="float64", na_value=np.nan)).sum())
        if count:
            found[str(column)] = count
    if found:
        listed = ", ".join(f"{column!r} ({count:,} rows)" for column, count in found.items())
        raise DataError(
            f"data: infinite values (±inf) in {listed}",
            hint="replace them with a finite number, or leave the cell empty (NaN) to impute it",
        )


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
    if task == "classification":
        _refuse_continuous(labels, target)
    return task  # type: ignore[return-value]


def looks_continuous(labels: pd.Series) -> bool:
    """Whether numeric labels look like measurements rather than classes.

    More than ``_MAX_INFERRED_CLASSES`` distinct values that are not all whole numbers, or whole
    numbers with more distinct values than both ``_MAX_CLASSES`` and half of the rows.
    """
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(labels) or pd.api.types.is_bool_dtype(labels):
        return False
    values = labels.dropna()
    distinct = int(values.nunique())
    if distinct <= _MAX_INFERRED_CLASSES:
        return False
    if not bool((values == values.round()).all()):
        return True
    return distinct > _MAX_CLASSES and distinct > len(values) / 2


def _refuse_continuous(labels: pd.Series, target: str) -> None:
    if looks_continuous(labels):
        values = labels.dropna()
        raise DataError(
            f"target: column {target!r} has {values.nunique():,} distinct values in "
            f"{len(values):,} rows: it looks continuous, not like classes",
            hint="use --task regression (or bin the target into classes first)",
        )


def check_classes(labels: pd.Series, target: str, test_size: float | None = None) -> None:
    """Refuse classes a stratified split cannot place on both sides, naming them and counts."""
    counts = labels.value_counts(dropna=True)
    small = counts[counts < _MIN_CLASS_ROWS]
    if len(small):
        shown = ", ".join(f"{_show(label)} ({count})" for label, count in small.head(10).items())
        more = f" and {len(small) - 10} more" if len(small) > 10 else ""
        raise DataError(
            f"target: column {target!r} has {len(small)} class(es) with fewer than "
            f"{_MIN_CLASS_ROWS} rows, too few for a stratified train/test split: {shown}{more}",
            hint="add rows for these classes, or drop them (or merge them into another class)",
        )
    if test_size is None:
        return
    rows, classes = int(counts.sum()), len(counts)
    test_rows = math.ceil(rows * test_size)
    if test_rows < classes or rows - test_rows < classes:
        raise DataError(
            f"target: column {target!r} has {classes} classes, but a {test_size:g} split of "
            f"{rows} rows leaves {test_rows} test and {rows - test_rows} train rows: a "
            "stratified split needs at least one row per class on each side",
            hint="add rows, or change KFP_MLFLOW_TEST_SIZE",
        )


def _show(value: Any) -> str:
    """A label as the user wrote it: 'a', 3 — not np.int64(3)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


# --- Column profile: identifiers, high cardinality, timestamps ---------------------------------

_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?P<zone>Z|[+-]\d{2}:?\d{2})?)?"
)
_ID_NAME = re.compile(r"(?i)(?:^|[_\s.-])(?:id|uuid|guid|key|index)$|^(?:id|uuid|guid)|[a-z]Id$")


@dataclass(frozen=True)
class DroppedColumn:
    """A column left out of training, and why (for a warning logged to MLflow)."""

    column: str
    reason: str


@dataclass(frozen=True)
class DatasetProfile:
    """What :func:`prepare` found: the task, the column kinds and the columns it dropped."""

    task: TaskType
    rows: int
    numeric_columns: tuple[str, ...]
    categorical_columns: tuple[str, ...]
    datetime_columns: tuple[str, ...]
    dropped: tuple[DroppedColumn, ...] = ()

    def warnings(self) -> list[str]:
        """One line per dropped column, for the caller to log (e.g. as an MLflow tag)."""
        return [f"dropped column {d.column!r}: {d.reason}" for d in self.dropped]

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "rows": self.rows,
            "numeric_columns": list(self.numeric_columns),
            "categorical_columns": list(self.categorical_columns),
            "datetime_columns": list(self.datetime_columns),
            "dropped": {d.column: d.reason for d in self.dropped},
        }


@dataclass(frozen=True)
class PreparedData:
    """The frame to split and train on, and its profile."""

    frame: pd.DataFrame
    profile: DatasetProfile

    @property
    def task(self) -> TaskType:
        return self.profile.task


def prepare(
    frame: pd.DataFrame,
    target: str,
    task: str,
    min_rows: int,
    *,
    test_size: float | None = None,
    max_categories: int | None = DEFAULT_MAX_CATEGORIES,
) -> PreparedData:
    """Validate, turn ISO-8601 text columns into timestamps and drop identifier-like columns.

    The one call a preprocessing step needs before :func:`split`: it raises a
    :class:`DataError` for data that cannot train, and returns the cleaned frame with a profile
    whose ``warnings()`` name each dropped column and why.
    """
    frame = parse_datetimes(frame, exclude=(target,))
    resolved = validate(frame, target, task, min_rows, test_size=test_size)
    dropped = id_like_columns(frame, target, max_categories=max_categories)
    if dropped:
        frame = frame.drop(columns=[d.column for d in dropped])
        if frame.shape[1] < 2:
            reasons = "; ".join(f"{d.column!r}: {d.reason}" for d in dropped)
            raise DataError(
                f"data: no usable feature columns besides the target {target!r} ({reasons})",
                hint="add feature columns a model can generalise from",
            )
    kinds = column_kinds(frame, target)
    profile = DatasetProfile(
        task=resolved,
        rows=len(frame),
        numeric_columns=kinds["numeric"],
        categorical_columns=kinds["categorical"],
        datetime_columns=kinds["datetime"],
        dropped=tuple(dropped),
    )
    return PreparedData(frame, profile)


def column_kinds(frame: pd.DataFrame, target: str) -> dict[str, tuple[str, ...]]:
    """Feature columns by how a model pipeline encodes them: numeric, categorical, datetime.

    Booleans, text and pandas categoricals are categorical; datetime64 columns (naive or with a
    time zone) are datetimes; every other numeric column is numeric.
    """
    import pandas as pd

    kinds: dict[str, list[str]] = {"numeric": [], "categorical": [], "datetime": []}
    for column in frame.columns:
        if column == target:
            continue
        dtype = frame[column].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            kinds["datetime"].append(str(column))
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            kinds["numeric"].append(str(column))
        else:
            kinds["categorical"].append(str(column))
    return {kind: tuple(columns) for kind, columns in kinds.items()}


def datetime_columns(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    """Columns that are timestamps: datetime64 (naive or zoned), or text in ISO 8601.

    A text column counts when every non-null value among its first 1,000 is an ISO 8601 date
    or timestamp (``YYYY-MM-DD``, optionally ``[T ]HH:MM[:SS[.fff]]`` and ``Z``/``±HH:MM``) and
    the whole column then parses; other spellings (``03/04/2024``) stay text, on purpose: they
    are ambiguous.
    """
    import pandas as pd

    found = []
    for column in frame.columns:
        if column in exclude:
            continue
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values.dtype) or _parse_iso(values) is not None:
            found.append(str(column))
    return found


def parse_datetimes(frame: pd.DataFrame, exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """``frame`` with its ISO 8601 text columns (see :func:`datetime_columns`) as datetime64."""
    converted = {}
    for column in frame.columns:
        if column in exclude:
            continue
        parsed = _parse_iso(frame[column])
        if parsed is not None:
            converted[column] = parsed
    return frame.assign(**converted) if converted else frame


def _parse_iso(values: pd.Series) -> pd.Series | None:
    import pandas as pd

    if not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values)):
        return None
    sample = values.dropna().head(1000)
    matches = [
        _ISO_DATETIME.fullmatch(value.strip()) if isinstance(value, str) else None
        for value in sample
    ]
    if sample.empty or not all(matches):
        return None
    # Any offset in the sample: parse all in UTC, since mixed offsets have no one naive time.
    zoned = any(match.group("zone") for match in matches if match)
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=zoned)
    if int(parsed.isna().sum()) != int(values.isna().sum()):
        return None
    return parsed


def id_like_columns(
    frame: pd.DataFrame, target: str, *, max_categories: int | None = DEFAULT_MAX_CATEGORIES
) -> list[DroppedColumn]:
    """Columns a model cannot learn from and whose encoding would blow up memory.

    - text or integer, unique per row (an identifier): integers only when the name says so
      (``id``, ``user_id``, ``orderId``, ...), the values count rows (min..min+n-1), or the
      table has at least 1,000 rows, so a small table's measurements are not mistaken for ids;
    - text whose distinct values exceed half of its rows, or ``max_categories`` — one-hot
      encoding would make one column per value.

    Floats, booleans, timestamps and the target are never dropped; tables under 20 rows are
    left alone.
    """
    import pandas as pd

    rows = len(frame)
    if rows < _MIN_PROFILE_ROWS:
        return []
    dropped: list[DroppedColumn] = []
    for column in frame.columns:
        if column == target:
            continue
        values = frame[column]
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
            continue
        if pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        present = int(values.notna().sum())
        distinct = int(values.nunique(dropna=True))
        if pd.api.types.is_integer_dtype(dtype):
            if distinct == rows and _integer_id(str(column), values, rows):
                dropped.append(DroppedColumn(str(column), _UNIQUE_REASON.format(rows=rows)))
            continue
        if distinct == rows:
            dropped.append(DroppedColumn(str(column), _UNIQUE_REASON.format(rows=rows)))
        elif distinct > present / 2:
            dropped.append(
                DroppedColumn(
                    str(column),
                    f"{distinct:,} distinct values in {present:,} rows (more than half): "
                    "one-hot encoding would make a column per value; hash or bucket it first",
                )
            )
        elif max_categories is not None and distinct > max_categories:
            dropped.append(
                DroppedColumn(
                    str(column),
                    f"{distinct:,} distinct values, more than max_categories={max_categories:,}: "
                    "one-hot encoding would make a column per value; hash or bucket it first",
                )
            )
    return dropped


_UNIQUE_REASON = (
    "unique in each of the {rows:,} rows (an identifier): a model cannot generalise from it"
)


def _integer_id(name: str, values: pd.Series, rows: int) -> bool:
    if _ID_NAME.search(name) or rows >= _MIN_ANONYMOUS_ID_ROWS:
        return True
    return int(values.max()) - int(values.min()) + 1 == rows


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
        # Stratified always: a silent fallback would give a test set without some classes.
        check_classes(frame[target], target, test_size)
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
