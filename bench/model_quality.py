"""Benchmark: our default search space vs the Spark ML pipeline of Learning Spark (ch. 11).

    python bench/model_quality.py [--datasets diabetes,breast_cancer,...] [--json out.json]

For each dataset, the local training pipeline runs with the default candidates against a real
`mlflow server` on 127.0.0.1 (started and stopped here); then the book's pipeline —
StringIndexer(handleInvalid="keep") + VectorAssembler(handleInvalid="keep") +
RandomForestRegressor/Classifier(maxDepth=5, numTrees=100, maxBins=40, seed=42), with the
book's median Imputer for numeric columns (Spark's forests refuse NaN) — is fitted on a
local[2] SparkSession on *the same train rows* the pipeline's preprocess wrote and scored on the
same test rows, with the same metric code (kfp_mlflow.models.metrics.score).

Datasets: the bundled diabetes, breast_cancer and wine sets, and two generated reproducibly
(seeded): a price-like regression (12,000 rows, categorical columns, missing values, a
right-skewed positive target) and an imbalanced binary classification (6,000 rows, ~7 %
positives, categorical columns). Prints per dataset the primary metric of each side (rmse:
lower is better; roc_auc: higher is better), the ratio (>= 1.0: ours at least as good), wall
times, and for classification whether our champion predicts more than one class (never a
majority-class-only model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ALL = ("diabetes", "breast_cancer", "wine", "price", "imbalanced")
TARGETS = {
    "diabetes": "disease_progression",
    "breast_cancer": "diagnosis",
    "wine": "cultivar",
    "price": "price",
    "imbalanced": "churned",
}


def say(text: str = "") -> None:
    # Not print(): kfp.local patches builtins.print to indent task logs.
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def price_like(rows: int = 12_000, seed: int = 7) -> pd.DataFrame:
    """Apartment-price-like rows: a multiplicative model, so the target is right-skewed."""
    rng = np.random.default_rng(seed)
    city = rng.choice(
        ["paris", "lyon", "lille", "nice", "nantes", "brest", "metz"],
        rows,
        p=[0.3, 0.2, 0.15, 0.1, 0.1, 0.1, 0.05],
    )
    kind = rng.choice(["flat", "house", "studio", "loft"], rows, p=[0.5, 0.3, 0.15, 0.05])
    district = rng.choice([f"d{i:02d}" for i in range(25)], rows)
    area = rng.lognormal(np.log(60), 0.45, rows)
    rooms = np.clip(np.round(area / 22 + rng.normal(0, 0.7, rows)), 1, 9)
    age = rng.uniform(0, 120, rows)
    floor = rng.integers(0, 12, rows).astype(float)
    city_factor = (
        pd.Series(city)
        .map(
            {
                "paris": 2.4,
                "lyon": 1.5,
                "lille": 1.1,
                "nice": 1.6,
                "nantes": 1.2,
                "brest": 0.8,
                "metz": 0.85,
            }
        )
        .to_numpy()
    )
    kind_factor = pd.Series(kind).map({"flat": 1.0, "house": 1.15, "studio": 1.1, "loft": 1.4})
    district_factor = 1 + (np.array([int(d[1:]) for d in district]) % 5) * 0.06
    price = (
        3_000
        * area
        * city_factor
        * kind_factor.to_numpy()
        * district_factor
        * np.exp(-age / 300)
        * (1 + 0.01 * floor)
        * rng.lognormal(0, 0.18, rows)
    )
    frame = pd.DataFrame(
        {
            "city": city,
            "kind": kind,
            "district": district,
            "area": area.round(1),
            "rooms": rooms,
            "age": age.round(0),
            "floor": floor,
            "price": price.round(0),
        }
    )
    for column, share in (("area", 0.05), ("age", 0.1), ("floor", 0.08), ("kind", 0.04)):
        frame.loc[rng.random(rows) < share, column] = None
    return frame


def imbalanced(rows: int = 6_000, seed: int = 11) -> pd.DataFrame:
    """Churn-like rows: a rare positive class driven by numbers, categories and interactions."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro", "family"], rows, p=[0.45, 0.3, 0.15, 0.1])
    region = rng.choice(["north", "south", "east", "west", "centre"], rows)
    channel = rng.choice(["web", "shop", "phone"], rows, p=[0.6, 0.3, 0.1])
    tenure = rng.exponential(24, rows)
    monthly = rng.normal(40, 15, rows).clip(5)
    tickets = rng.poisson(1.0, rows).astype(float)
    logit = (
        -4.2
        + 0.9 * (plan == "basic")
        + 0.6 * (channel == "phone")
        - 0.04 * tenure
        + 0.5 * tickets
        + 0.02 * (monthly - 40)
        + 0.7 * ((region == "south") & (tickets > 1))
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "plan": plan,
            "region": region,
            "channel": channel,
            "tenure": tenure.round(1),
            "monthly": monthly.round(2),
            "tickets": tickets,
            "churned": np.where(churned, "yes", "no"),
        }
    )
    frame.loc[rng.random(rows) < 0.05, "monthly"] = None
    return frame


def book_pipeline(train: pd.DataFrame, test: pd.DataFrame, target: str, task: str) -> Any:
    """Learning Spark's pipeline, fitted on ``train``; returns a scorer for ``test``."""
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import RandomForestClassifier
    from pyspark.ml.feature import Imputer, StringIndexer, VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.ml.regression import RandomForestRegressor

    from kfp_mlflow.models.spark_backend import local_session, to_spark

    session = local_session()
    features = train.drop(columns=[target])
    text = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    numeric = [c for c in features.columns if c not in text]
    indexed = [f"{c}_index" for c in text]
    stages: list[Any] = []
    if text:
        stages.append(StringIndexer(inputCols=text, outputCols=indexed, handleInvalid="keep"))
    # Spark's forests refuse NaN features; the book imputes numbers (median) in its data
    # preparation before this pipeline, so that is done here, inside the pipeline.
    imputed = [f"{c}_imputed" for c in numeric]
    if numeric:
        stages.append(Imputer(inputCols=numeric, outputCols=imputed, strategy="median"))
    stages.append(
        VectorAssembler(inputCols=indexed + imputed, outputCol="features", handleInvalid="keep")
    )
    frame = to_spark(session, train)
    forest: dict[str, Any] = {"maxDepth": 5, "numTrees": 100, "maxBins": 40, "seed": 42}
    labels: list[str] = []
    if task == "classification":
        label = StringIndexer(inputCol=target, outputCol="label").fit(frame)
        labels = list(label.labels)
        frame = label.transform(frame)
        stages.append(RandomForestClassifier(labelCol="label", **forest))
    else:
        stages.append(RandomForestRegressor(labelCol=target, **forest))
    model = Pipeline(stages=stages).fit(frame)
    scored = model.transform(to_spark(session, test.drop(columns=[target])))
    if task == "regression":
        return _Fixed(scored.select("prediction").toPandas()["prediction"].to_numpy(), None, [])
    out = scored.select("prediction", vector_to_array("probability").alias("p")).toPandas()
    order = [labels.index(c) for c in sorted(labels)]
    predicted = np.array([labels[int(i)] for i in out["prediction"]])
    return _Fixed(predicted, np.vstack(out["p"].to_numpy())[:, order], sorted(labels))


class _Fixed:
    """Precomputed predictions behind the interface ``score`` expects."""

    def __init__(self, predictions: Any, probabilities: Any, classes: list[str]) -> None:
        self._predictions, self._probabilities = predictions, probabilities
        if probabilities is not None:
            self.classes_ = classes
            self.predict_proba = lambda _features: self._probabilities

    def predict(self, _features: Any) -> Any:
        return self._predictions


def run_dataset(name: str, work: Path, server_url: str) -> dict[str, Any]:
    from kfp_mlflow.core.settings import get_settings
    from kfp_mlflow.data.datasets import as_model_input
    from kfp_mlflow.local.runner import run_local
    from kfp_mlflow.models.metrics import score

    target = TARGETS[name]
    if name in ("price", "imbalanced"):
        path = work / f"{name}.parquet"
        (price_like() if name == "price" else imbalanced()).to_parquet(path, index=False)
        data = str(path)
    else:
        data = f"sklearn://{name}"
    os.environ.update(
        {
            "MLFLOW_TRACKING_URI": server_url,
            "MLFLOW_EXPERIMENT_NAME": f"model-quality-{name}",
            "KFP_MLFLOW_MODEL_NAME": f"quality-{name}",
            "KFP_MLFLOW_WORK_DIR": str(work / name),
        }
    )
    get_settings.cache_clear()
    began = time.perf_counter()
    result = run_local(None, {"data": data, "target": target}, get_settings())
    ours_seconds = time.perf_counter() - began
    result.raise_for_failure()
    decision = result.decision
    assert decision is not None
    winner = next(c for c in decision.candidates if c["candidate"] == decision.winner)
    train = pd.read_parquet(next(result.run_dir.glob("*/preprocess/train_data")))
    test = pd.read_parquet(next(result.run_dir.glob("*/preprocess/test_data")))
    task = next(t for t in result.tasks if t.step == "preprocess").outputs["train_data"][
        "metadata"
    ]["task"]
    began = time.perf_counter()
    spark = book_pipeline(train, test, target, task)
    spark_seconds = time.perf_counter() - began
    truth = test[target]
    spark_metrics = score(spark, as_model_input(test.drop(columns=[target])), truth, task).metrics
    metric = decision.metric
    ours, theirs = winner["metrics"][metric], spark_metrics[metric]
    ratio = theirs / ours if decision.direction == "min" else ours / theirs
    row = {
        "dataset": name,
        "rows": len(train) + len(test),
        "task": task,
        "metric": metric,
        "ours": ours,
        "spark": theirs,
        "ratio": ratio,
        "champion": decision.winner,
        "ours_seconds": ours_seconds,
        "spark_seconds": spark_seconds,
    }
    if task == "classification":
        import mlflow.pyfunc

        champion = mlflow.pyfunc.load_model(f"models:/quality-{name}@champion")
        predicted = set(np.asarray(champion.predict(test.drop(columns=[target]))).astype(str))
        row["champion_classes_predicted"] = len(predicted)
        row["ours_accuracy"] = winner["metrics"]["accuracy"]
        row["spark_accuracy"] = spark_metrics["accuracy"]
        row["spark_classes_predicted"] = len(set(np.asarray(spark.predict(None)).astype(str)))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(ALL))
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    options = parser.parse_args()
    from kfp_mlflow.local.server import LocalMlflowServer

    rows = []
    with tempfile.TemporaryDirectory(prefix="kfp-mlflow-quality-") as tmp:
        work = Path(tmp)
        server = LocalMlflowServer(work / "mlflow")
        server.start()
        try:
            for name in options.datasets.split(","):
                say(f"{name}: running the pipeline and the Spark ML pipeline...")
                row = run_dataset(name, work, server.url)
                rows.append(row)
                say(json.dumps(row))
        finally:
            server.stop()
    say()
    say(
        "| dataset | rows | metric | default champion | ours | Spark RF (book) | ratio | "
        "ours wall s | Spark wall s |"
    )
    say("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        say(
            f"| {r['dataset']} | {r['rows']} | {r['metric']} | {r['champion']} | {r['ours']:.4g} "
            f"| {r['spark']:.4g} | {r['ratio']:.3f} | {r['ours_seconds']:.0f} "
            f"| {r['spark_seconds']:.0f} |"
        )
    say(
        "ratio: Spark's rmse / ours, or our roc_auc / Spark's; >= 1.0 means ours is at least as good"
    )
    for r in rows:
        if r["task"] == "classification":
            say(
                f"{r['dataset']}: champion predicts {r['champion_classes_predicted']} classes "
                f"(accuracy {r['ours_accuracy']:.3f}; Spark {r['spark_accuracy']:.3f}, "
                f"{r['spark_classes_predicted']} classes)"
            )
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2))
    worse = [r["dataset"] for r in rows if r["ratio"] < 1.0]
    say("GOAL MET: ours >= Spark on every dataset" if not worse else f"ours worse on: {worse}")


if __name__ == "__main__":
    main()
