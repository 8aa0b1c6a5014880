"""Where a dataset's bytes come from, and how to turn them into a DataFrame.

Every location becomes one pyarrow filesystem plus a path inside it, so a single file, a
directory of part files and a Hive-partitioned tree read the same way wherever they live:

- a local path (or ``file://``): pyarrow's local filesystem;
- ``s3://bucket/key`` and ``minio://bucket/key`` (KFP's scheme for its object store, same bucket
  and key): pyarrow's own S3 client against ``MLFLOW_S3_ENDPOINT_URL``. It is built into the
  pyarrow wheel, reads Parquet directories with column projection and needs no further package;
- any other fsspec URL (``gs://``, ``abfs://``, ``https://``, ...): the fsspec backend, wrapped
  as a pyarrow filesystem. A backend whose package is missing is one line naming the package.

Formats: Parquet (a file, or a directory read with ``pyarrow.dataset``: Spark's ``_SUCCESS`` and
other ``_``/``.`` files are skipped, ``col=value/`` directories become columns) and CSV (delimiter
and encoding detected from a sample, ``.gz``/``.zst``/``.bz2`` decompressed by pyarrow's codecs).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from kfp_mlflow.core.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.fs as pafs

    from kfp_mlflow.core.settings import Settings

_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
# File suffix → pyarrow codec name; pyarrow decompresses these natively (no Python package).
_COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
_DELIMITERS = ",;\t|"
_SAMPLE_BYTES = 256 * 1024
_SAMPLE_LINES = 200

# fsspec scheme → the package that provides it, for a one-line "install X" error.
_BACKENDS = {
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "az": "adlfs",
    "adl": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
    "hf": "huggingface_hub",
    "oci": "ocifs",
    "webhdfs": "requests",
    "sftp": "paramiko",
    "ssh": "paramiko",
}


@dataclass(frozen=True)
class Location:
    """A dataset's place: the URI as written, a pyarrow filesystem and the path inside it."""

    uri: str
    filesystem: pafs.FileSystem
    path: str
    object_store: str | None = None  # the S3 endpoint, to name it when it fails

    @property
    def name(self) -> str:
        return PurePosixPath(self.path.rstrip("/")).name or self.uri


def resolve(uri: str, settings: Settings) -> Location:
    """The filesystem and path ``uri`` names (no I/O beyond constructing the client)."""
    import pyarrow.fs as pafs

    parsed = urlparse(uri)
    # A one-letter scheme is a Windows drive (C:\data.csv), not a URL.
    if parsed.scheme in {"", "file"} or len(parsed.scheme) == 1:
        path = Path(parsed.path if parsed.scheme == "file" else uri).expanduser()
        return Location(uri, pafs.LocalFileSystem(), str(path.absolute()))
    if parsed.scheme in {"s3", "minio"}:
        return _s3_location(uri, parsed.netloc, parsed.path.lstrip("/"), settings)
    return _fsspec_location(uri, parsed.scheme)


def _s3_location(uri: str, bucket: str, key: str, settings: Settings) -> Location:
    import pyarrow.fs as pafs

    if not bucket or not key.strip("/"):
        raise ConfigError(f"data: {uri!r} must name a bucket and a key (s3://bucket/key)")
    if not settings.s3_endpoint_url:
        raise ConfigError(
            f"data: {uri!r} needs an S3 endpoint",
            hint="set MLFLOW_S3_ENDPOINT_URL (or AWS_ENDPOINT_URL), e.g. http://seaweedfs:9000",
        )
    endpoint = urlparse(settings.s3_endpoint_url)
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
    access = settings.s3_access_key.get_secret_value() if settings.s3_access_key else None
    filesystem = pafs.S3FileSystem(
        access_key=access,
        secret_key=secret,
        endpoint_override=endpoint.netloc or endpoint.path,
        scheme=endpoint.scheme or "http",
        # A store that stops answering fails the step within about a minute (3 x 20 s of
        # silence at most), never hangs it; the timeout is per read, not for the whole file.
        connect_timeout=5,
        request_timeout=20,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    )
    return Location(uri, filesystem, f"{bucket}/{key}", object_store=settings.s3_endpoint_url)


def _fsspec_location(uri: str, scheme: str) -> Location:
    import fsspec
    import pyarrow.fs as pafs

    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError as error:  # fsspec knows no such protocol
        raise ConfigError(
            f"data: unsupported URI scheme {scheme!r} in {uri!r}",
            hint="use a local path, s3://, minio://, gs://, abfs://, https:// or sklearn://<name>",
        ) from error
    except ImportError as error:
        package = _BACKENDS.get(scheme) or _package_named_in(str(error)) or f"the {scheme} backend"
        raise ConfigError(
            f"data: reading {scheme}:// URLs ({uri}) needs the {package} package, "
            "which is not installed",
            hint=f"pip install {package}",
        ) from error
    try:
        filesystem, path = fsspec.core.url_to_fs(uri)
    except ImportError as error:  # a backend's own optional dependency
        package = _package_named_in(str(error)) or _BACKENDS.get(scheme, scheme)
        raise ConfigError(
            f"data: reading {scheme}:// URLs ({uri}) needs the {package} package",
            hint=f"pip install {package}",
        ) from error
    except Exception as error:  # credentials, malformed account names, ...
        raise ConfigError(f"data: cannot open {uri}: {_first_line(error)}") from error
    return Location(uri, pafs.PyFileSystem(pafs.FSSpecHandler(filesystem)), path)


def _package_named_in(message: str) -> str | None:
    match = re.search(r"install (?:the )?[`'\"]?([A-Za-z0-9_.\-]+)", message, re.IGNORECASE)
    return match.group(1) if match else None


def read_frame(location: Location, columns: list[str] | None = None) -> pd.DataFrame:
    """Read the file or directory at ``location``; ``columns`` limits what is read."""
    import pyarrow.fs as pafs

    info = _info(location, location.path)
    if info.type == pafs.FileType.NotFound:
        raise _not_found(location)
    if info.type == pafs.FileType.Directory:
        frame = _read_directory(location, columns)
    elif _format_of(location, location.path) == "parquet":
        frame = _read_parquet(location, location.path, columns)
    else:
        frame = _read_csv(location, location.path, columns)
    if len(frame) == 0:
        # Said here, where the file is known: later checks would see "every value is null".
        raise DataError(
            f"data: {location.uri} has no rows (only the header: "
            f"{', '.join(map(str, frame.columns[:10]))})",
            hint="add data rows, or point --data at the file that has them",
        )
    return frame


def _info(location: Location, path: str) -> pafs.FileInfo:
    try:
        return location.filesystem.get_file_info(path)
    except Exception as error:
        raise _io_error(location, error) from error


def _not_found(location: Location) -> DataError:
    if location.object_store:
        return DataError(
            f"data: cannot read {location.uri}: NoSuchKey (no object or prefix at that key)",
            hint="check the bucket and key, e.g. with `mc ls` or `aws s3 ls`",
        )
    if location.uri.startswith(("/", ".", "~")) or "://" not in location.uri:
        return DataError(
            f"data: file not found: {location.path}",
            hint="check --data (a CSV or Parquet file, or a directory of Parquet part files)",
        )
    return DataError(f"data: not found: {location.uri}", hint="check the URL in --data")


def _io_error(location: Location, error: Exception) -> DataError:
    message = _first_line(error)
    if location.object_store:
        code = re.search(r"AWS Error ([A-Z_]+)", message)
        if code and code.group(1) in {"NETWORK_CONNECTION", "UNREACHABLE"}:
            return DataError(
                f"data: object store at {location.object_store} unreachable for {location.uri}",
                hint="check MLFLOW_S3_ENDPOINT_URL and that the store is running",
            )
        if code and code.group(1) in {"ACCESS_DENIED", "INVALID_ACCESS_KEY_ID", "SIGNATURE"}:
            return DataError(
                f"data: cannot read {location.uri}: AccessDenied at {location.object_store}",
                hint="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
    return DataError(f"data: cannot read {location.uri}: {message}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _split_suffixes(path: str) -> tuple[str, str | None]:
    """The format suffix and the pyarrow codec of ``path`` (``x.csv.gz`` → ``.csv``, gzip)."""
    name = PurePosixPath(path).name.lower()
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    codec = _COMPRESSION.get(suffix)
    if codec:
        return PurePosixPath(stem).suffix, codec
    # Spark names compressed Parquet parts part-0000-<uuid>.snappy.parquet: .parquet decides.
    return suffix, None


def _format_of(location: Location, path: str) -> str:
    suffix, codec = _split_suffixes(path)
    if suffix in _PARQUET_SUFFIXES and codec is None:
        return "parquet"
    if suffix in _CSV_SUFFIXES:
        return "csv"
    # No telling suffix (Spark's part-00000, a presigned URL): Parquet files start with PAR1.
    try:
        with location.filesystem.open_input_stream(path) as stream:
            magic = stream.read(4)
    except Exception as error:
        raise _io_error(location, error) from error
    if magic == b"PAR1":
        return "parquet"
    raise ConfigError(
        f"data: {location.uri} is neither .csv nor .parquet",
        hint="name the file *.csv, *.csv.gz, *.csv.zst, *.parquet, or a directory of them",
    )


def _read_directory(location: Location, columns: list[str] | None) -> pd.DataFrame:
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(location.path, recursive=True)
    try:
        entries = location.filesystem.get_file_info(selector)
    except Exception as error:
        raise _io_error(location, error) from error
    base = location.path.rstrip("/")
    files = [
        entry.path
        for entry in entries
        if entry.type == pafs.FileType.File
        # Spark's _SUCCESS, _committed_*, .crc checksums: markers, not data (pyarrow's rule too).
        and not any(
            part.startswith(("_", "."))
            for part in PurePosixPath(entry.path[len(base) :].lstrip("/")).parts
        )
    ]
    if not files:
        raise DataError(
            f"data: the directory {location.uri} holds no data files",
            hint="point --data at a directory of part-*.parquet files or at one file",
        )
    suffixes = {_split_suffixes(path)[0] for path in files}
    if suffixes <= _CSV_SUFFIXES:
        import pandas as pd

        parts = [_read_csv(location, path, columns) for path in sorted(files)]
        return pd.concat(parts, ignore_index=True)
    return _read_parquet(location, base, columns, first_file=sorted(files)[0])


def _read_parquet(
    location: Location, path: str, columns: list[str] | None, first_file: str | None = None
) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    try:
        dataset = ds.dataset(
            path, filesystem=location.filesystem, format="parquet", partitioning="hive"
        )
        names = dataset.schema.names
        _refuse_duplicates(location, names)
        if columns is not None:
            _require_columns(location, names, columns)
        table = dataset.to_table(columns=columns)
    except (DataError, ConfigError):
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        if "duplicate field names" in str(error):
            # Dataset discovery refuses them before naming them: read them from one file.
            schema = pq.read_schema(first_file or path, filesystem=location.filesystem)
            _refuse_duplicates(location, schema.names)
        raise DataError(
            f"data: cannot parse {location.uri} as parquet: {_first_line(error)}",
            hint="check that every file under it is Parquet with the same columns",
        ) from error
    except Exception as error:
        raise _io_error(location, error) from error
    # Frees each Arrow column as soon as it is converted: peak memory is about one copy.
    frame: pd.DataFrame = table.to_pandas(self_destruct=True, split_blocks=True)
    return frame


def _refuse_duplicates(location: Location, names: list[str]) -> None:
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        listed = ", ".join(repr(name) for name in repeated)
        raise DataError(
            f"data: {location.uri} has duplicate column names: {listed}",
            hint="rename the columns so each name is unique",
        )


def _require_columns(location: Location, names: list[str], columns: list[str]) -> None:
    missing = [column for column in columns if column not in names]
    if missing:
        raise DataError(
            f"data: {location.uri} has no column {', '.join(map(repr, missing))}",
            hint=f"its columns are: {', '.join(names[:20])}",
        )


@dataclass(frozen=True)
class CsvFormat:
    """What was detected from the start of a CSV file."""

    delimiter: str
    quotechar: str
    encoding: str
    header: list[str]
    has_rows: bool


def sniff_csv(sample: bytes, source: str = "the CSV file") -> CsvFormat:
    """Encoding, delimiter and header of a CSV file from its first bytes."""
    encoding, text = _decode(sample, source)
    lines = text.splitlines()[:_SAMPLE_LINES]
    # A sample cut mid-file may end mid-line: drop the partial last line when there are others.
    if len(sample) >= _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return CsvFormat(",", '"', encoding, [], has_rows=False)
    head = "\n".join(lines)
    delimiter, quotechar = _delimiter(head)
    rows = list(csv.reader(io.StringIO(head), delimiter=delimiter, quotechar=quotechar))
    return CsvFormat(delimiter, quotechar, encoding, rows[0], has_rows=len(rows) > 1)


def _decode(sample: bytes, source: str) -> tuple[str, str]:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", sample[len(codecs.BOM_UTF8) :].decode("utf-8", errors="ignore")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", sample.decode("utf-16", errors="ignore")
    # Cut at the last newline: a multi-byte character never contains the byte 0x0A.
    whole = sample if len(sample) < _SAMPLE_BYTES else sample[: sample.rfind(b"\n") + 1]
    for encoding in ("utf-8", "cp1252"):
        try:
            return encoding, whole.decode(encoding)
        except UnicodeDecodeError:
            continue
    return "latin-1", whole.decode("latin-1")


def _delimiter(head: str) -> tuple[str, str]:
    """csv.Sniffer's answer when every sampled line then has the header's field count."""
    try:
        dialect = csv.Sniffer().sniff(head, delimiters=_DELIMITERS)
        sniffed: tuple[str, str] | None = (dialect.delimiter, dialect.quotechar or '"')
    except csv.Error:
        sniffed = None
    if sniffed and _consistent(head, *sniffed) > 1:
        return sniffed
    # The Sniffer guesses from character frequencies and can pick a character that occurs in
    # values; choose instead the delimiter that splits every line into the same most fields.
    best = max(_DELIMITERS, key=lambda candidate: _consistent(head, candidate, '"'))
    return (best, '"') if _consistent(head, best, '"') > 1 else (",", '"')


def _consistent(head: str, delimiter: str, quotechar: str) -> int:
    """Fields per line if every line has the same number, else 0."""
    try:
        counts = {
            len(row)
            for row in csv.reader(io.StringIO(head), delimiter=delimiter, quotechar=quotechar)
        }
    except csv.Error:
        return 0
    return counts.pop() if len(counts) == 1 else 0


def _read_csv(location: Location, path: str, columns: list[str] | None) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    _, codec = _split_suffixes(path)
    if codec and not pa.Codec.is_available(codec):
        raise ConfigError(
            f"data: {location.uri} is {codec}-compressed and this pyarrow build cannot decode it",
            hint=f"install a pyarrow wheel built with {codec}, or decompress the file first",
        )
    try:
        with location.filesystem.open_input_stream(path, compression=codec) as stream:
            sample = stream.read(_SAMPLE_BYTES)
    except Exception as error:
        raise _io_error(location, error) from error
    detected = sniff_csv(sample, location.uri)
    if not detected.header:
        raise DataError(f"data: {location.uri} is empty (no header, no rows)")
    _refuse_duplicates(location, detected.header)
    if columns is not None:
        _require_columns(location, detected.header, columns)
    options: dict[str, Any] = {
        "sep": detected.delimiter,
        "quotechar": detected.quotechar,
        "encoding": detected.encoding,
        "usecols": columns,
        "low_memory": False,
    }
    try:
        with location.filesystem.open_input_stream(path, compression=codec) as stream:
            frame: pd.DataFrame = pd.read_csv(stream, **options)
    except UnicodeDecodeError as error:
        raise DataError(
            f"data: {location.uri} is not valid {detected.encoding} (byte {error.start}: "
            f"{error.object[error.start : error.start + 1]!r})",
            hint="save the file as UTF-8",
        ) from error
    except Exception as error:  # pandas raises many unrelated types for malformed input
        raise DataError(
            f"data: cannot parse {location.uri} as csv "
            f"(delimiter {detected.delimiter!r}): {_first_line(error)}",
            hint="check the file's delimiter and quoting",
        ) from error
    return frame
