"""Score a dataset with a registered model version, chunk by chunk, into a Parquet file.

The building blocks of batch and streaming prediction (``batch_predict``, ``kfp-mlflow predict``
and ``predict --watch``):

* :func:`resolve_model` turns ``models:/<name>@<alias>`` (or a version) into one immutable
  version, once, so a whole batch is scored by the same model even if the alias moves meanwhile;
* :func:`load_model` loads it with its signature;
* :func:`read_chunks` reads any dataset training accepts, Parquet in bounded-memory record
  batches (``pyarrow.dataset``), anything else whole and then sliced;
* :func:`score` checks the input against the signature (missing columns, wrong types, extra
  columns ignored and reported), predicts each chunk and appends it to the output Parquet file,
  hashing the rows it read and feeding any observer (drift monitoring) as it goes.

No kfp import here: the component wraps it, and the streaming loop calls it in-process.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_mlflow.core.exceptions import ConfigError, DataError
from kfp_mlflow.core.naming import check_model_name
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.registry.versions import find_version
from kfp_mlflow.tracking.runs import mlflow_errors, tracking_uri_env

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

DEFAULT_ALIAS = "champion"
DEFAULT_CHUNK_ROWS = 100_000
ROW_COLUMN = "row"  # the key of each prediction when the input names no key column
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# Signature types → the pandas kinds a column may have (numbers convert among themselves).
_NUMERIC = frozenset("biuf")
_ACCEPTED_KINDS: dict[str, frozenset[str]] = {
    "double": _NUMERIC,
    "float": _NUMERIC,
    "long": _NUMERIC,
    "integer": _NUMERIC,
    "boolean": frozenset("b"),
    "string": frozenset("OSU"),
    "datetime": frozenset("M"),
}


@dataclass(frozen=True)
class ResolvedModel:
    """One immutable registered version (and the alias it was reached through, if any)."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def reference(self) -> str:
        """How the user named it: ``models:/n@champion`` or ``models:/n/3``."""
        return f"models:/{self.name}@{self.alias}" if self.alias else self.uri


def resolve_model(
    client: MlflowClient, name: str, *, version: str = "", alias: str = ""
) -> ResolvedModel:
    """``version`` if given (``alias`` is then ignored), else the version ``alias`` (default
    ``champion``) points at now."""
    from mlflow.exceptions import MlflowException

    check_model_name(name)
    with mlflow_errors(f"read registered model {name!r}"):
        try:
            registered = client.get_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise ConfigError(
                f"model: no registered model named {name!r} at this tracking server",
                hint="check --model-name (and MLFLOW_TRACKING_URI), or train one with "
                "`kfp-mlflow run`",
            ) from None
    aliases = dict(getattr(registered, "aliases", None) or {})
    if version:
        with mlflow_errors(f"read models:/{name}/{version}"):
            found = find_version(client, name, version=version)
        if found is None:
            latest = max((int(v.version) for v in registered.latest_versions or []), default=0)
            raise ConfigError(
                f"model: {name!r} has no version {version!r}",
                hint=f"its latest version is {latest}" if latest else "it has no versions",
            )
        return ResolvedModel(name, str(found.version), None, found.run_id, dict(found.tags))
    alias = alias or DEFAULT_ALIAS
    with mlflow_errors(f"read models:/{name}@{alias}"):
        found = find_version(client, name, alias=alias)
    if found is None:
        known = ", ".join(f"@{a}→v{v}" for a, v in sorted(aliases.items())) or "none"
        raise ConfigError(
            f"model: {name!r} has no alias @{alias} (its aliases: {known})",
            hint="pass --version V, or --alias with one of its aliases",
        )
    return ResolvedModel(name, str(found.version), alias, found.run_id, dict(found.tags))


@dataclass(frozen=True)
class InputColumn:
    name: str
    type: str  # MLflow signature type: double, long, string, boolean, datetime...
    required: bool


@dataclass
class LoadedModel:
    """A model ready to score: the object that predicts and the columns it wants."""

    source: str  # models:/n/v, or a local model directory
    predictor: Any
    inputs: list[InputColumn]
    classes: list[Any] | None  # classifiers with predict_proba: the class labels, in order

    @property
    def task(self) -> str:
        return "classification" if self.classes is not None else "regression"


def load_model(source: str, tracking_uri: str | None = None) -> LoadedModel:
    """Load a model directory or ``models:/n/v``; its signature names the input columns."""
    import mlflow.pyfunc

    with (
        tracking_uri_env(tracking_uri if source.startswith("models:/") else None),
        mlflow_errors(f"load {source}"),
    ):
        pyfunc = mlflow.pyfunc.load_model(source)
    # The framework's own object when it has the scikit-learn API (classifiers then give
    # probabilities, and no per-call schema conversion), else the pyfunc model.
    try:
        raw = pyfunc.get_raw_model()
    except Exception:  # flavors without a raw model (custom pyfunc)
        raw = None
    predictor = raw if raw is not None and hasattr(raw, "predict") else pyfunc
    schema = pyfunc.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        raise ConfigError(
            f"model: {source} has no named input signature, so its columns cannot be checked",
            hint="log the model with a signature (kfp-mlflow's train step always does)",
        )
    inputs = [
        InputColumn(str(spec.name), _type_name(spec.type), bool(getattr(spec, "required", True)))
        for spec in schema.inputs
    ]
    classes = None
    if hasattr(predictor, "predict_proba") and hasattr(predictor, "classes_"):
        classes = list(predictor.classes_)
    return LoadedModel(source, predictor, inputs, classes)


def _type_name(kind: Any) -> str:
    name = getattr(kind, "name", None)
    return str(name if name is not None else kind).lower()


@dataclass(frozen=True)
class InputCheck:
    features: list[str]
    keys: list[str]
    ignored: list[str]


def check_input(
    model: LoadedModel, frame: pd.DataFrame, keys: list[str], source: str
) -> InputCheck:
    """Columns of the first chunk against the signature: one line per problem, naming it."""
    import pandas as pd

    columns = [str(column) for column in frame.columns]
    missing_keys = [key for key in keys if key not in columns]
    if missing_keys:
        raise DataError(
            f"data: {source} has no key column {', '.join(map(repr, missing_keys))}",
            hint=f"--id-column must be one of its columns: {', '.join(columns[:20])}",
        )
    missing = [c.name for c in model.inputs if c.required and c.name not in columns]
    if missing:
        raise DataError(
            f"data: {source} lacks column(s) {', '.join(map(repr, missing))} that "
            f"{model.source} requires",
            hint="add them (same names as the training data) or score with a model trained "
            "on these columns",
        )
    for column in model.inputs:
        if column.name not in columns:
            continue
        series = frame[column.name]
        accepted = _ACCEPTED_KINDS.get(column.type)
        kind = series.dtype.kind
        if column.type == "string" and isinstance(
            series.dtype, pd.CategoricalDtype | pd.StringDtype
        ):
            continue
        if accepted is None or kind in accepted:
            continue
        if kind == "O" and series.dropna().map(type).isin([str]).all() and column.type == "string":
            continue
        raise DataError(
            f"data: column {column.name!r} of {source} is {series.dtype}, but {model.source} "
            f"expects {column.type}",
            hint=f"convert {column.name!r} to {column.type} before scoring",
        )
    wanted = {c.name for c in model.inputs}
    return InputCheck(
        features=[c.name for c in model.inputs if c.name in columns],
        keys=list(keys),
        ignored=[c for c in columns if c not in wanted and c not in keys],
    )


def read_chunks(
    uri: str, settings: Settings | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The dataset ``uri`` names, ``chunk_rows`` rows at a time.

    Parquet (a file or a directory of part files, local or in an object store) is streamed in
    record batches, so memory is bounded by the chunk size whatever the dataset size. Other
    sources (CSV, ``sklearn://``, ``runs:/`` snapshots) are read whole, then sliced.
    """
    from kfp_mlflow.data.datasets import read_dataset

    settings = settings or get_settings()
    dataset = _parquet_dataset(uri, settings)
    if dataset is None:
        frame = read_dataset(uri, settings)
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start : start + chunk_rows].reset_index(drop=True)
        return
    import pyarrow as pa

    empty = True
    try:
        # One thread, no read-ahead: with pyarrow's defaults the scanner decodes ahead of a
        # slow consumer (the model) until the whole dataset sits in memory.
        batches = dataset.to_batches(
            batch_size=chunk_rows, batch_readahead=0, fragment_readahead=0, use_threads=False
        )
        for batch in batches:
            if batch.num_rows:
                empty = False
                yield pa.Table.from_batches([batch]).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
        raise DataError(
            f"data: cannot read {uri} as Parquet: {str(error).splitlines()[0]}"
        ) from error
    if empty:
        raise DataError(f"data: {uri} has no rows", hint="point --data at the file that has them")


def _parquet_dataset(uri: str, settings: Settings) -> Any:
    """A ``pyarrow.dataset`` over ``uri`` when it is Parquet, else None (read it whole)."""
    if uri.startswith(("sklearn://", "runs:/", "models:/")):
        return None
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    from kfp_mlflow.data.sources import resolve

    location = resolve(uri, settings)
    try:
        info = location.filesystem.get_file_info(location.path)
    except Exception:
        return None  # read_dataset names the problem
    if info.type == pafs.FileType.File and not location.path.lower().endswith(_PARQUET_SUFFIXES):
        return None
    if info.type not in (pafs.FileType.File, pafs.FileType.Directory):
        return None
    try:
        dataset = ds.dataset(
            location.path, filesystem=location.filesystem, format="parquet", partitioning="hive"
        )
    except Exception:
        return None  # a directory of CSV files, or unreadable: read_dataset says which
    return dataset if dataset.files else None


@dataclass
class ScoreResult:
    rows: int
    seconds: float
    digest: str
    columns: list[str]
    check: InputCheck

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def score(
    model: LoadedModel,
    chunks: Iterator[pd.DataFrame],
    output: Path,
    *,
    source: str,
    keys: list[str] | None = None,
    observe: Callable[[pd.DataFrame, Any], None] | None = None,
) -> ScoreResult:
    """Predict every chunk and write ``output`` (Parquet): the key columns (or ``row``), the
    prediction and, for classifiers, one ``probability_<class>`` column per class.

    ``observe(features, predictions)`` sees each chunk (drift monitoring). The file is written
    beside ``output`` and moved into place when complete: a reader never sees half of it.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = list(keys or [])
    started = time.perf_counter()
    hasher = hashlib.sha256()
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    writer: pq.ParquetWriter | None = None
    check: InputCheck | None = None
    rows = 0
    try:
        for chunk in chunks:
            if check is None:
                check = check_input(model, chunk, keys, source)
                hasher.update(
                    "\x1f".join(f"{c}:{t}" for c, t in chunk.dtypes.astype(str).items()).encode()
                )
            hasher.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
            out, predictions = _predict(model, chunk, check, rows, source)
            # Built from arrays, not pandas: no pandas metadata, so equal inputs give equal bytes.
            table = pa.table(out)
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            if observe is not None:
                observe(chunk[check.features], predictions)
            rows += len(chunk)
        if writer is None or check is None:
            raise DataError(
                f"data: {source} has no rows", hint="point --data at the file that has them"
            )
        columns = list(writer.schema.names)
        writer.close()
        writer = None
        _fsync(partial)
        os.replace(partial, output)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return ScoreResult(rows, time.perf_counter() - started, hasher.hexdigest(), columns, check)


def _predict(
    model: LoadedModel, chunk: pd.DataFrame, check: InputCheck, first_row: int, source: str
) -> tuple[dict[str, Any], Any]:
    """The output columns of one chunk, and its predictions."""
    import numpy as np

    from kfp_mlflow.data.datasets import as_model_input

    features = as_model_input(chunk[check.features])
    out: dict[str, Any] = {}
    if check.keys:
        for key in check.keys:
            out[key] = chunk[key].to_numpy()
    else:
        out[ROW_COLUMN] = np.arange(first_row, first_row + len(chunk), dtype="int64")
    try:
        predictions = np.asarray(model.predictor.predict(features))
        probabilities = (
            np.asarray(model.predictor.predict_proba(features))
            if model.classes is not None
            else None
        )
    except (ValueError, TypeError) as error:
        raise DataError(
            f"data: {model.source} cannot score {source}: {str(error).splitlines()[0]}"
        ) from error
    out[PREDICTION_COLUMN] = predictions
    if probabilities is not None and model.classes is not None:
        for index, label in enumerate(model.classes):
            out[f"{PROBABILITY_PREFIX}{label}"] = probabilities[:, index]
    return out, predictions


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
