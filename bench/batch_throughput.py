"""Batch scoring at scale: 1,000,000 rows x 20 columns in bounded memory, rows/s.

    python bench/batch_throughput.py [--rows 1000000] [--chunk-rows 100000] [--parts 8]

A child process generates the table reproducibly (seed 0: an id, 14 float, 3 integer and 2 text
columns, some values missing) as Spark-style Parquet part files, and fits and saves an MLflow
model (scikit-learn pipeline with one-hot encoding and Ridge, as kfp-mlflow's `linear`
candidate) on 20,000 of its rows. This process then does exactly what the `batch_predict`
step does after resolving the version — load the model, build the drift reference, stream the
dataset in chunks, predict, write Parquet, count drift bins, hash the rows — and prints rows/s
and its own peak RSS (``resource.getrusage``; the generator's memory is not counted).
Exits 1 if the peak reaches 2 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

LIMIT_MIB = 2048


def generate(directory: Path, rows: int, parts: int) -> None:
    import mlflow.sklearn
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature

    from kfp_mlflow.data.datasets import as_model_input
    from kfp_mlflow.models.sklearn_backend import Candidate, build_pipeline, fit

    rng = np.random.default_rng(0)
    data = directory / "table"
    data.mkdir(parents=True)
    (data / "_SUCCESS").write_bytes(b"")
    step = -(-rows // parts)
    sample: list[pd.DataFrame] = []
    for part in range(parts):
        n = min(step, rows - part * step)
        columns: dict[str, Any] = {"id": np.arange(part * step, part * step + n)}
        for index in range(14):
            values = rng.normal(loc=index, scale=1 + index, size=n)
            values[rng.random(n) < 0.01] = np.nan
            columns[f"num_{index:02d}"] = values
        for index, high in enumerate((10, 1_000, 100_000)):
            columns[f"int_{index}"] = rng.integers(0, high, size=n)
        for index, cardinality in enumerate((5, 40)):
            vocabulary = np.array([f"c{index}_{value:04d}" for value in range(cardinality)])
            columns[f"cat_{index}"] = vocabulary[rng.integers(0, cardinality, size=n)]
        table = pa.table(columns)
        pq.write_table(table, data / f"part-{part:05d}.snappy.parquet")
        if part == 0:
            sample.append(table.slice(0, 20_000).to_pandas())
    train = sample[0]
    features = as_model_input(train.drop(columns=["id"]))
    target = (
        0.3 * train["num_00"].fillna(0)
        + (train["cat_0"] == "c0_0001")
        + rng.normal(size=len(train))
    )
    candidate = Candidate.parse({"name": "linear", "family": "linear", "params": {"alpha": 1.0}})
    model = build_pipeline(candidate, "regression", 0, features)
    fit(model, candidate, features, target)
    head = features.head(100)
    mlflow.sklearn.save_model(
        model,
        str(directory / "model"),
        serialization_format="cloudpickle",
        signature=infer_signature(head, model.predict(head)),
    )
    train.drop(columns=["id"]).to_parquet(directory / "reference.parquet")


def measure(directory: Path, chunk_rows: int) -> dict[str, float]:
    import pandas as pd

    from kfp_mlflow.data.datasets import as_model_input
    from kfp_mlflow.data.drift import Reference
    from kfp_mlflow.serving.scoring import ResolvedModel, load_model
    from kfp_mlflow.steps.batch_predict import score_version

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = load_model(str(directory / "model"))
    train = pd.read_parquet(directory / "reference.parquet")
    features = train[[c.name for c in model.inputs]]
    reference = Reference.build(
        features, model.predictor.predict(as_model_input(features)), "bench training sample"
    )
    started = time.perf_counter()
    result = score_version(
        ResolvedModel("bench", "1", None, None),
        model,
        data=str(directory / "table"),
        output=directory / "predictions.parquet",
        key_columns=["id"],
        chunk_rows=chunk_rows,
        reference=reference,
    )
    seconds = time.perf_counter() - started
    record = result.predictions
    return {
        "rows": record.rows,
        "seconds": seconds,
        "rows_per_second": record.rows / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": before,
        "max_psi": max(record.drift.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.rows, args.parts)
        return
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--generate", folder, "--rows", str(args.rows),
             "--parts", str(args.parts)],
            check=True,
        )  # fmt: skip
        print(f"generated {args.rows:,} rows x 20 columns in {time.perf_counter() - started:.1f}s")
        figures = measure(directory, args.chunk_rows)
    print(json.dumps(figures, indent=2))
    print(
        f"scored {figures['rows']:,.0f} rows in {figures['seconds']:.1f}s: "
        f"{figures['rows_per_second']:,.0f} rows/s, chunks of {args.chunk_rows:,}, "
        f"peak RSS {figures['peak_rss_mib']:,.0f} MiB (limit {LIMIT_MIB:,})"
    )
    if figures["peak_rss_mib"] >= LIMIT_MIB:
        sys.exit(1)


if __name__ == "__main__":
    main()
