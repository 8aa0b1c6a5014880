"""Benchmark: what like-for-like promotion costs the register step.

    python bench/head_to_head.py [--rows 2000] [--repeats 5]

Starts a real `mlflow server`, registers two scikit-learn versions of a regression model (a
gradient-boosting champion and a linear challenger, logged with signatures), and times
``kfp_mlflow.registry.head_to_head.compare`` — two ``mlflow.models.evaluate`` runs on the challenger's
test rows plus ``validate_evaluation_results`` — over ``--repeats`` fresh comparisons. Prints
the median and max seconds and the verdict, then stops the server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression, Ridge

    from kfp_mlflow.local.server import LocalMlflowServer
    from kfp_mlflow.registry.head_to_head import HeldOutRows, compare
    from kfp_mlflow.registry.policy import Policy
    from kfp_mlflow.tracking.runs import tracking_uri_env

    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(options.rows * 2, 8)), columns=list("abcdefgh"))
    target = features["a"] * 3 - features["b"] ** 2 + rng.normal(0, 0.3, len(features))
    train, test = slice(0, options.rows), slice(options.rows, None)

    with tempfile.TemporaryDirectory(prefix="bench-h2h-") as tmp:
        server = LocalMlflowServer(Path(tmp) / "mlflow")
        server.start()
        try:
            client = MlflowClient(server.url, server.url)
            experiment_id = client.create_experiment("bench-h2h")
            versions = []
            for name, model in (
                ("champion", Ridge(alpha=1000.0)),
                ("challenger", LinearRegression()),
            ):
                model.fit(features[train], target[train])
                run = client.create_run(experiment_id, run_name=name)
                with tracking_uri_env(server.url), mlflow.start_run(run_id=run.info.run_id):
                    info = mlflow.sklearn.log_model(
                        model, name="model", pip_requirements=["scikit-learn"],
                        signature=infer_signature(features[train], model.predict(features[train])),
                    )  # fmt: skip
                if not versions:
                    client.create_registered_model("bench")
                version = client.create_model_version(
                    "bench", info.model_uri, run.info.run_id, model_id=info.model_id
                )
                versions.append(str(version.version))
            parent = client.create_run(experiment_id, run_name="register").info.run_id
            rows = HeldOutRows(
                features[test].reset_index(drop=True),
                target[test].reset_index(drop=True),
                "regression",
                "bench",
            )
            policy = Policy.for_task("regression")
            seconds, verdict = [], None
            for _ in range(options.repeats):
                started = time.perf_counter()
                verdict = compare(
                    client, "bench", versions[1], versions[0], policy, rows,
                    experiment_id=experiment_id, parent_run_id=parent,
                )  # fmt: skip
                seconds.append(time.perf_counter() - started)
        finally:
            server.stop()
    assert verdict is not None
    say(f"head-to-head on {options.rows} test rows, {options.repeats} comparisons")
    say(
        f"  median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
        f"(first {seconds[0]:.2f} s: imports and model downloads)"
    )
    say(f"  verdict: challenger {verdict.verdict} — {verdict.describe(versions[1])}")


if __name__ == "__main__":
    main()
