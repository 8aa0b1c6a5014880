"""Reading real files in the layouts and encodings users have (local files, no network)."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kfp_mlflow.core.exceptions import ConfigError, DataError
from kfp_mlflow.data.datasets import read_dataset
from kfp_mlflow.data.sources import sniff_csv


def _frame(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "fixed acidity": rng.normal(7, 1, rows).round(2),
            "colour": rng.choice(["red", "white"], rows),
            "quality": rng.integers(3, 9, rows),
        }
    )


def _spark_directory(root, frame: pd.DataFrame, parts: int = 3):
    """What Spark writes: part files, a _SUCCESS marker and hidden .crc checksums."""
    root.mkdir()
    (root / "_SUCCESS").write_bytes(b"")
    for index, chunk in enumerate(np.array_split(np.arange(len(frame)), parts)):
        name = f"part-{index:05d}-9f1c-c000.snappy.parquet"
        frame.iloc[chunk].to_parquet(root / name, index=False)
        (root / f".{name}.crc").write_bytes(b"\x00crc")
    return root


# --- Parquet ------------------------------------------------------------------------------------


def test_spark_part_directory_reads_as_one_table(tmp_path):
    frame = _frame()
    directory = _spark_directory(tmp_path / "wine.parquet", frame)
    read = read_dataset(str(directory))
    pd.testing.assert_frame_equal(
        read.sort_values("fixed acidity").reset_index(drop=True),
        frame.sort_values("fixed acidity").reset_index(drop=True),
    )


def test_hive_partitions_become_columns(tmp_path):
    frame = _frame()
    for colour, rows in frame.groupby("colour"):
        part = tmp_path / "table" / f"colour={colour}"
        part.mkdir(parents=True)
        rows.drop(columns="colour").to_parquet(part / "part-0.parquet", index=False)
    read = read_dataset(str(tmp_path / "table"))
    assert sorted(read.columns) == sorted(frame.columns)
    assert read["colour"].value_counts().to_dict() == frame["colour"].value_counts().to_dict()


def test_part_files_without_a_suffix_are_recognised_as_parquet(tmp_path):
    (tmp_path / "part-00000").write_bytes(_frame().to_parquet(index=False))
    assert len(read_dataset(str(tmp_path / "part-00000"))) == 40


def test_only_the_requested_columns_are_read(tmp_path):
    directory = _spark_directory(tmp_path / "t", _frame())
    read = read_dataset(str(directory), columns=["quality", "colour"])
    assert list(read.columns) == ["quality", "colour"]
    with pytest.raises(DataError, match="has no column 'price'"):
        read_dataset(str(directory), columns=["price"])


def test_directory_with_only_markers_says_so(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_SUCCESS").write_bytes(b"")
    with pytest.raises(DataError, match=r"the directory .*out holds no data files"):
        read_dataset(str(tmp_path / "out"))


def test_parquet_with_duplicate_column_names_is_refused(tmp_path):
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])
    pq.write_table(table, tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"d\.parquet has duplicate column names: 'a'"):
        read_dataset(str(tmp_path / "d.parquet"))


def test_parquet_with_no_rows_says_no_rows(tmp_path):
    _frame().head(0).to_parquet(tmp_path / "d.parquet", index=False)
    with pytest.raises(DataError, match="has no rows"):
        read_dataset(str(tmp_path / "d.parquet"))


def test_a_directory_mixing_parquet_and_other_files_names_the_problem(tmp_path):
    directory = _spark_directory(tmp_path / "t", _frame())
    (directory / "notes.md").write_text("# not data")
    with pytest.raises(DataError, match=r"cannot parse .*t as parquet"):
        read_dataset(str(directory))


# --- CSV ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_detected(tmp_path, delimiter):
    frame = _frame()
    path = tmp_path / "d.csv"
    frame.to_csv(path, sep=delimiter, index=False)
    pd.testing.assert_frame_equal(read_dataset(str(path)), frame)


def test_wine_quality_as_published(tmp_path):
    """The UCI file: `;`-separated with a quoted header and decimals that use a point."""
    path = tmp_path / "winequality-red.csv"
    path.write_text(
        '"fixed acidity";"volatile acidity";"citric acid";"quality"\n'
        "7.4;0.7;0;5\n7.8;0.88;0;5\n7.8;0.76;0.04;5\n11.2;0.28;0.56;6\n"
    )
    read = read_dataset(str(path))
    assert list(read.columns) == ["fixed acidity", "volatile acidity", "citric acid", "quality"]
    assert read["volatile acidity"].tolist() == [0.7, 0.88, 0.76, 0.28]


def test_semicolon_csv_with_decimal_commas_is_split_on_semicolons(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b;c\n1,5;2,25;x\n3,0;4,5;y\n5,5;6,0;z\n")
    assert list(read_dataset(str(path)).columns) == ["a", "b", "c"]


def test_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffname;größe\nä;1\nö;2\n".encode())
    read = read_dataset(str(path))
    assert list(read.columns) == ["name", "größe"]
    assert read["name"].tolist() == ["ä", "ö"]


def test_windows_1252_csv_is_decoded(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("city,price\nZürich,1\nMälmo,2\n".encode("cp1252"))
    assert read_dataset(str(path))["city"].tolist() == ["Zürich", "Mälmo"]


def test_gzip_and_zstd_csv(tmp_path):
    frame = _frame()
    text = frame.to_csv(sep=";", index=False).encode()
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(text))
    with pa.CompressedOutputStream(str(tmp_path / "d.csv.zst"), "zstd") as out:
        out.write(text)
    pd.testing.assert_frame_equal(read_dataset(str(tmp_path / "d.csv.gz")), frame)
    pd.testing.assert_frame_equal(read_dataset(str(tmp_path / "d.csv.zst")), frame)


def test_directory_of_csv_part_files(tmp_path):
    frame = _frame()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_SUCCESS").write_bytes(b"")
    frame.iloc[:20].to_csv(tmp_path / "out" / "part-00000.csv", index=False)
    frame.iloc[20:].to_csv(tmp_path / "out" / "part-00001.csv", index=False)
    pd.testing.assert_frame_equal(read_dataset(str(tmp_path / "out")), frame)


def test_duplicate_csv_header_is_refused_not_renamed(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,a,c,b\n1,2,3,4,5\n")
    with pytest.raises(DataError, match=r"d\.csv has duplicate column names: 'a', 'b'") as info:
        read_dataset(str(path))
    assert "rename the columns" in str(info.value)


def test_header_only_csv_says_no_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y,label\n")
    with pytest.raises(DataError, match=r"d\.csv has no rows \(only the header: x, y, label\)"):
        read_dataset(str(path))


def test_empty_csv_says_empty(tmp_path):
    (tmp_path / "d.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"d\.csv is empty \(no header, no rows\)"):
        read_dataset(str(tmp_path / "d.csv"))


def test_malformed_csv_names_file_and_delimiter(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('a,b\n1,2\n3,"4\n')
    with pytest.raises(DataError, match=r"cannot parse .*d\.csv as csv \(delimiter ','\)"):
        read_dataset(str(path))


def test_sniffer_falls_back_to_the_consistent_delimiter():
    # Text with commas inside values but `;` as the separator misleads a frequency count.
    sample = b"name;note\nann;a, b, c\nbob;d, e, f\ncy;g, h, i\n"
    detected = sniff_csv(sample)
    assert detected.delimiter == ";"
    assert detected.header == ["name", "note"]
    assert detected.has_rows


def test_single_column_csv():
    detected = sniff_csv(b"y\n1\n2\n")
    assert detected.header == ["y"]


# --- Locations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "package"),
    [("gs://bucket/data.csv", "gcsfs"), ("abfs://container/data.parquet", "adlfs")],
)
def test_missing_backend_names_the_package(uri, package):
    scheme = uri.split(":")[0]
    with pytest.raises(ConfigError) as info:
        read_dataset(uri)
    message = str(info.value)
    assert f"reading {scheme}:// URLs ({uri}) needs the {package} package" in message
    assert f"pip install {package}" in message
    assert "\n" not in message


def test_https_without_its_backend_names_aiohttp(monkeypatch):
    """Stands in for a machine without aiohttp (installed here): hide it from the importer."""
    import fsspec  # noqa: F401 (registers fsspec.registry)

    registry = sys.modules["fsspec.registry"]._registry
    for scheme in ("http", "https"):
        monkeypatch.delitem(registry, scheme, raising=False)
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "fsspec.implementations.http", raising=False)
    with pytest.raises(ConfigError, match=r"needs the aiohttp package.* pip install aiohttp"):
        read_dataset("https://example.org/data.csv")


def test_file_url_and_unknown_format(tmp_path):
    _frame().to_csv(tmp_path / "d.csv", index=False)
    assert len(read_dataset(f"file://{tmp_path / 'd.csv'}")) == 40
    (tmp_path / "d.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"d\.json is neither \.csv nor \.parquet"):
        read_dataset(str(tmp_path / "d.json"))
