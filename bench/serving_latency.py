"""Benchmark: request latency of `kfp-mlflow serve` (MLflow's scoring server) on 127.0.0.1.

    python bench/serving_latency.py [--requests 200] [--rows 1]

Starts a real `mlflow server`, trains and registers the linear candidate with the local
pipeline, serves `@champion` with MLflow's scoring server, sends ``--requests`` sequential
``dataframe_split`` requests of ``--rows`` test rows each (after 10 warm-up requests), and
prints p50/p99/max latency in milliseconds. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

WARM_UP = 10


def say(text: str = "") -> None:
    # Not print(): kfp.local patches builtins.print to indent task logs.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1)
    args = parser.parse_args()

    import pandas as pd

    from kfp_mlflow.core.settings import get_settings
    from kfp_mlflow.local.runner import run_local
    from kfp_mlflow.local.server import LocalMlflowServer
    from kfp_mlflow.serving.server import ScoringServer, resolve_version

    with tempfile.TemporaryDirectory() as tmp, LocalMlflowServer(Path(tmp) / "mlflow") as mlflow:
        os.environ.update(
            MLFLOW_TRACKING_URI=mlflow.url,
            MLFLOW_EXPERIMENT_NAME="bench-serving",
            KFP_MLFLOW_MODEL_NAME="bench-serving",
            KFP_MLFLOW_WORK_DIR=str(Path(tmp) / "work"),
            MLFLOW_DISABLE_TELEMETRY="true",
        )
        get_settings.cache_clear()
        settings = get_settings()
        candidates = [{"name": "linear", "family": "linear", "params": {"alpha": 1.0}}]
        result = run_local(None, {"candidates": candidates}, settings)
        result.raise_for_failure()
        (test_split,) = result.run_dir.glob("*/preprocess/test_data")
        features = pd.read_parquet(test_split).drop(columns=["disease_progression"])
        resolved = resolve_version("bench-serving", settings=settings)
        began = time.perf_counter()
        with ScoringServer(
            resolved, log_path=Path(tmp) / "scoring.log", settings=settings
        ) as server:
            started = time.perf_counter() - began
            latencies = []
            for index in range(WARM_UP + args.requests):
                start = index * args.rows % max(1, len(features) - args.rows)
                rows = features.iloc[start : start + args.rows]
                body = json.dumps(
                    {
                        "dataframe_split": {
                            "columns": list(rows.columns),
                            "data": rows.to_numpy().tolist(),
                        }
                    }
                ).encode()
                request = urllib.request.Request(
                    server.invocations_url, data=body, headers={"Content-Type": "application/json"}
                )
                sent = time.perf_counter()
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                elapsed = time.perf_counter() - sent
                assert len(answer["predictions"]) == len(rows)
                if index >= WARM_UP:
                    latencies.append(elapsed * 1000)
    say(f"model {resolved.uri}; scoring server ready in {started:.1f}s")
    say(
        f"{args.requests} sequential requests of {args.rows} row(s): "
        f"p50 {percentile(latencies, 0.50):.2f} ms, p99 {percentile(latencies, 0.99):.2f} ms, "
        f"max {max(latencies):.2f} ms, mean {statistics.fmean(latencies):.2f} ms"
    )


if __name__ == "__main__":
    main()
