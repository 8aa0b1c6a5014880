"""Each data case of issues 8 and 9, end to end through the data path a preprocess step runs.

S3 cases read from a real SeaweedFS server; HTTP from a real server on 127.0.0.1; the rest from
local files. Every case either yields a frame ready to split, or fails with one line of the
right class (DataError: exit 3, ConfigError: exit 2) naming the file, column or value.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kfp_mlflow.core.exceptions import ConfigError, DataError, KfpMlflowError
from kfp_mlflow.core.net import free_port
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.data.datasets import PreparedData, digest, prepare, read_dataset, split
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, start_seaweedfs


def _sales(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    return pd.DataFrame(
        {
            "region": rng.choice(["eu", "us", "apac"], rows),
            "units": rng.integers(1, 50, rows),
            "discount": rng.uniform(0, 0.3, rows).round(3),
            "price": rng.lognormal(3, 0.5, rows).round(2),
        }
    )


def data_path(uri: str, target: str, task: str = "") -> tuple[PreparedData, object]:
    """What preprocess runs: read, prepare (validate + profile), split."""
    settings = get_settings()
    frame = read_dataset(uri, settings)
    prepared = prepare(frame, target, task, settings.min_rows, test_size=settings.test_size)
    parts = split(prepared.frame, target, prepared.task, settings.seed, settings.test_size)
    return prepared, parts


def _one_line(error: KfpMlflowError) -> str:
    message = str(error)
    assert "\n" not in message
    return message


# --- S3 (SeaweedFS) ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    sales = _sales()
    s3 = server.client()
    s3.make_bucket("lake")

    def put(key: str, payload: bytes) -> None:
        s3.put_object("lake", key, io.BytesIO(payload), len(payload))

    put("sales.parquet/_SUCCESS", b"")
    for index, rows in enumerate(np.array_split(np.arange(len(sales)), 4)):
        name = f"part-{index:05d}-0a1b-c000.snappy.parquet"
        put(f"sales.parquet/{name}", sales.iloc[rows].to_parquet(index=False))
        put(f"sales.parquet/.{name}.crc", b"crc")
    for region, rows in sales.groupby("region"):
        put(f"by_region/region={region}/part-0.parquet", rows.drop(columns="region").to_parquet())
    put("raw/sales.csv.gz", gzip.compress(sales.to_csv(sep=";", index=False).encode()))
    put("raw/header_only.csv", b"region,units,price\n")
    yield server, sales
    server.stop()


@pytest.fixture
def s3_env(lake, monkeypatch):
    server, _ = lake
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    get_settings.cache_clear()


def _same_rows(read: pd.DataFrame, expected: pd.DataFrame) -> None:
    columns = sorted(expected.columns)
    key = ["region", "units", "discount", "price"]
    left = read[columns].sort_values(key).reset_index(drop=True)
    right = expected[columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


@pytest.mark.parametrize("scheme", ["s3", "minio"])
def test_spark_part_files_on_s3(scheme, lake, s3_env):
    _, sales = lake
    prepared, parts = data_path(f"{scheme}://lake/sales.parquet", "price")
    _same_rows(prepared.frame, sales)
    assert prepared.task == "regression"
    assert len(parts.train) + len(parts.test) == len(sales)


def test_hive_partitions_on_s3_become_a_column(lake, s3_env):
    _, sales = lake
    frame = read_dataset("s3://lake/by_region")
    _same_rows(frame, sales)


def test_only_needed_columns_are_fetched_from_s3(lake, s3_env):
    frame = read_dataset("s3://lake/sales.parquet", columns=["price", "units"])
    assert list(frame.columns) == ["price", "units"]


def test_compressed_semicolon_csv_on_s3(lake, s3_env):
    _, sales = lake
    frame = read_dataset("minio://lake/raw/sales.csv.gz")
    _same_rows(frame, sales)
    assert digest(frame[sales.columns]) == digest(sales)


def test_header_only_csv_on_s3_says_no_rows(s3_env):
    with pytest.raises(DataError) as info:
        data_path("s3://lake/raw/header_only.csv", "price")
    assert "data: s3://lake/raw/header_only.csv has no rows" in _one_line(info.value)
    assert info.value.exit_code == 3


def test_missing_key_on_s3(s3_env):
    with pytest.raises(DataError, match=r"cannot read s3://lake/nope/: NoSuchKey"):
        read_dataset("s3://lake/nope/")


def test_wrong_credentials_on_s3(lake, monkeypatch):
    server, _ = lake
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    get_settings.cache_clear()
    with pytest.raises(DataError) as info:
        read_dataset("s3://lake/sales.parquet")
    message = _one_line(info.value)
    assert "cannot read s3://lake/sales.parquet: AccessDenied" in message
    assert "AWS_SECRET_ACCESS_KEY" in message


def test_unreachable_store_fails_in_seconds(monkeypatch):
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    start = time.monotonic()
    with pytest.raises(DataError, match=r"object store at http://127\.0\.0\.1:\d+ unreachable"):
        read_dataset("s3://lake/sales.parquet")
    assert time.monotonic() - start < 30


# --- HTTP through fsspec (a real server on 127.0.0.1) -------------------------------------------


@pytest.fixture
def http_root(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_csv_over_http(http_root):
    directory, url = http_root
    sales = _sales()
    sales.to_csv(directory / "sales.csv", sep="\t", index=False)
    prepared, _ = data_path(f"{url}/sales.csv", "price")
    pd.testing.assert_frame_equal(prepared.frame, sales)
    with pytest.raises(DataError, match=r"not found: http://127.0.0.1:\d+/missing.csv"):
        read_dataset(f"{url}/missing.csv")


# --- Local files: every case, pass or one line -------------------------------------------------


def _write(name: str, frame: pd.DataFrame, **options: object) -> Callable[[Path], str]:
    def make(directory: Path) -> str:
        path = directory / name
        if name.endswith(".parquet"):
            frame.to_parquet(path, index=False)
        elif name.endswith(".zst"):
            with pa.CompressedOutputStream(str(path), "zstd") as out:
                out.write(frame.to_csv(index=False, **options).encode())
        else:
            frame.to_csv(path, index=False, **options)  # type: ignore[arg-type]
        return str(path)

    return make


def _text(name: str, content: bytes) -> Callable[[Path], str]:
    def make(directory: Path) -> str:
        (directory / name).write_bytes(content)
        return str(directory / name)

    return make


def _spark_dir(directory: Path) -> str:
    out = directory / "out.parquet"
    out.mkdir()
    (out / "_SUCCESS").write_bytes(b"")
    for index, rows in enumerate(np.array_split(np.arange(300), 3)):
        _sales().iloc[rows].to_parquet(out / f"part-{index:05d}.snappy.parquet", index=False)
    return str(out)


def _hive_dir(directory: Path) -> str:
    for region, rows in _sales().groupby("region"):
        (directory / "t" / f"region={region}").mkdir(parents=True)
        rows.drop(columns="region").to_parquet(directory / "t" / f"region={region}" / "p.parquet")
    return str(directory / "t")


def _labels(counts: dict[str, int]) -> pd.DataFrame:
    labels = [label for label, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"x": np.arange(len(labels)) * 0.5, "label": labels})


_rng = np.random.default_rng(4)
_ids = pd.DataFrame(
    {
        "session": [f"s-{i:06d}" for i in _rng.permutation(50_000)],
        "x": _rng.normal(size=50_000),
        "label": _rng.choice(["a", "b"], 50_000),
    }
)
_infinite = _sales().assign(discount=lambda f: f["discount"].where(f.index % 50 != 0, np.inf))
_continuous = pd.DataFrame({"x": np.arange(1500) * 0.1, "y": np.arange(1500) % 1200})
_dates = _sales().assign(sold=[f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(300)])

PASSES: dict[str, tuple[Callable[[Path], str], str, str]] = {
    "spark part directory": (_spark_dir, "price", ""),
    "hive partitions": (_hive_dir, "price", ""),
    "semicolon csv": (_write("d.csv", _sales(), sep=";"), "price", ""),
    "tab csv": (_write("d.tsv", _sales(), sep="\t"), "price", ""),
    "utf-8 BOM csv": (_write("d.csv", _sales(), encoding="utf-8-sig"), "price", ""),
    "gzip csv": (_write("d.csv.gz", _sales()), "price", ""),
    "zstd csv": (_write("d.csv.zst", _sales()), "price", ""),
    "unique id column (50,000 rows)": (_write("d.parquet", _ids), "label", ""),
    "ISO date text column": (_write("d.csv", _dates), "price", ""),
    "rare class, stratified": (_write("d.csv", _labels({"a": 190, "b": 10})), "label", ""),
}  # fmt: skip

FAILS: dict[str, tuple[Callable[[Path], str], str, str, type[KfpMlflowError], str]] = {
    "duplicate column names": (_text("d.csv", b"a,b,a\n1,2,3\n4,5,6\n"), "b", "", DataError, "d.csv has duplicate column names: 'a'"),
    "header-only csv": (_text("d.csv", b"x,label\n"), "label", "", DataError, "d.csv has no rows (only the header: x, label)"),
    "one class": (_write("d.csv", _labels({"a": 60})), "label", "", DataError, "column 'label' is constant ('a', one class)"),
    "one row per class": (_write("d.csv", _labels({f"c{i}": 1 for i in range(40)})), "label", "classification", DataError, "has 40 class(es) with fewer than 2 rows"),
    "singleton class": (_write("d.csv", _labels({"a": 40, "b": 30, "z": 1})), "label", "", DataError, "'z' (1)"),
    "infinite values": (_write("d.parquet", _infinite), "price", "", DataError, "infinite values (±inf) in 'discount' (6 rows)"),
    "continuous target as classes": (_write("d.csv", _continuous), "y", "classification", DataError, "target: column 'y' has 1,200 distinct values in 1,500 rows: it looks continuous"),
    "gs:// without gcsfs": (lambda _: "gs://bucket/d.csv", "y", "", ConfigError, "needs the gcsfs package"),
    "abfs:// without adlfs": (lambda _: "abfs://container/d.parquet", "y", "", ConfigError, "needs the adlfs package"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PASSES))
def test_data_case_passes(case, tmp_path):
    make, target, task = PASSES[case]
    prepared, parts = data_path(make(tmp_path), target, task)
    assert len(parts.train) > len(parts.test) > 0
    if case.startswith("unique id"):
        assert "session" not in prepared.frame.columns
        assert prepared.profile.warnings()[0].startswith("dropped column 'session': unique")
    if case.startswith("ISO date"):
        assert prepared.profile.datetime_columns == ("sold",)
    if case.startswith("rare class"):
        assert set(parts.test["label"]) == {"a", "b"}
    if case.startswith("hive"):
        assert set(prepared.frame["region"]) == {"eu", "us", "apac"}


@pytest.mark.parametrize("case", list(FAILS))
def test_data_case_fails_with_one_line(case, tmp_path):
    make, target, task, error, fragment = FAILS[case]
    with pytest.raises(KfpMlflowError) as info:
        data_path(make(tmp_path), target, task)
    assert type(info.value) is error
    assert info.value.exit_code == (3 if error is DataError else 2)
    assert fragment in _one_line(info.value)
    assert info.value.hint  # every failure says how to fix it
