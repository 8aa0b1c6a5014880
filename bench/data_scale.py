"""Data path at scale: read, validate, split and digest a 1,000,000 x 20 Parquet table.

    python bench/data_scale.py [--rows 1000000] [--parts 8] [--keep DIR]

Generates the table reproducibly (seed 0: 12 float, 3 integer and 4 text columns plus a float
target, some values missing) as Spark-style part files under a temporary directory, then times
each step of the data path in this process and prints seconds and peak RSS per step. Peak RSS is
the kernel's high-water mark (VmHWM), reset before each step where the kernel allows it.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def generate(directory: Path, rows: int, parts: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {}
    for index in range(12):
        values = rng.normal(loc=index, scale=1 + index, size=rows)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"num_{index:02d}"] = values
    for index, high in enumerate((10, 1_000, 100_000)):
        columns[f"int_{index}"] = rng.integers(0, high, size=rows)
    for index, cardinality in enumerate((5, 40, 300, 900)):
        vocabulary = np.array([f"c{index}_{value:04d}" for value in range(cardinality)])
        columns[f"cat_{index}"] = vocabulary[rng.integers(0, cardinality, size=rows)]
    columns["price"] = np.exp(
        0.3 * columns["num_00"] + 0.1 * (columns["cat_0"] == "c0_0001") + rng.normal(size=rows)
    )
    table = pa.table(columns)
    out = directory / "table"
    out.mkdir(parents=True)
    (out / "_SUCCESS").write_bytes(b"")
    step = -(-rows // parts)
    for part in range(parts):
        pq.write_table(table.slice(part * step, step), out / f"part-{part:05d}.snappy.parquet")
    return out


def _reset_peak() -> bool:
    try:  # Linux: writing 5 resets VmHWM, so each step's peak is its own
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(name: str, function: Callable[[], Any], results: list[tuple[str, float, float]]) -> Any:
    _reset_peak()
    start = time.perf_counter()
    value = function()
    results.append((name, time.perf_counter() - start, _peak_mib()))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    arguments = parser.parse_args()

    from kfp_mlflow.datasets import digest, prepare, read_dataset, split
    from kfp_mlflow.settings import Settings

    with tempfile.TemporaryDirectory() as scratch:
        root = arguments.keep or Path(scratch)
        start = time.perf_counter()
        path = generate(root, arguments.rows, arguments.parts)
        generated = time.perf_counter() - start
        size = sum(file.stat().st_size for file in path.iterdir()) / 2**20
        results: list[tuple[str, float, float]] = []
        settings = Settings()
        frame = _timed("read", lambda: read_dataset(str(path), settings), results)
        prepared = _timed(
            "validate+profile",
            lambda: prepare(frame, "price", "", 30, test_size=0.2),
            results,
        )
        _timed("digest", lambda: digest(prepared.frame), results)
        parts = _timed(
            "split (incl. digest)",
            lambda: split(prepared.frame, "price", prepared.task, 42, 0.2),
            results,
        )

    print(
        f"table: {arguments.rows:,} rows x {frame.shape[1]} columns, {arguments.parts} part files,"
        f" {size:.0f} MiB Parquet, generated in {generated:.1f}s"
    )
    print(
        f"task {prepared.task}; dropped {len(prepared.profile.dropped)} column(s); "
        f"train {len(parts.train):,} / test {len(parts.test):,} rows; digest {parts.digest[:12]}"
    )
    print(f"{'step':<22}{'seconds':>9}{'peak RSS MiB':>14}")
    for name, seconds, peak in results:
        print(f"{name:<22}{seconds:>9.2f}{peak:>14.0f}")
    print(
        f"{'process peak':<22}{'':>9}{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>14.0f}"
    )


if __name__ == "__main__":
    main()
