"""Add a step of your own between ours: a feature step that derives a column from the splits
``preprocess`` wrote and hands ``train`` new splits that keep the dataset contract.

    kfp-mlflow run --pipeline examples/feature_step.py:with_features
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

import kfp_mlflow


@kfp_mlflow.component
def add_bmi_bp(
    train_in: Input[Dataset], test_in: Input[Dataset],
    train_out: Output[Dataset], test_out: Output[Dataset],
) -> None:  # fmt: skip
    import pandas as pd

    import kfp_mlflow

    for source, target in ((train_in, train_out), (test_in, test_out)):
        info = kfp_mlflow.DatasetInfo.read(source, input_name="splits", consumer="add_bmi_bp")
        frame = pd.read_parquet(source.path).assign(bmi_bp=lambda f: f["bmi"] * f["bp"])
        frame.to_parquet(target.path, index=False)
        columns = {**info.columns, "bmi_bp": "float64"}
        info.model_copy(update={"columns": columns}).write(target)
    kfp_mlflow.current_run().log_metrics({"features_added": 1})


LINEAR = [{"name": "linear", "family": "linear", "params": {"alpha": 1.0}}]


@dsl.pipeline(name="with-features")
def with_features(
    data: str = "sklearn://diabetes",
    model_name: str = "with-features",
    candidates: list = LINEAR,
) -> None:
    with kfp_mlflow.exit_handler():
        split = kfp_mlflow.preprocess(
            data=data, target="disease_progression", task="", seed=42, test_size=0.2, min_rows=30
        )
        wide = add_bmi_bp(train_in=split.outputs["train_data"], test_in=split.outputs["test_data"])
        with dsl.ParallelFor(candidates) as c:
            fit = kfp_mlflow.train(candidate=c, train_data=wide.outputs["train_out"])
            scored = kfp_mlflow.evaluate(
                model=fit.outputs["model"], test_data=wide.outputs["test_out"]
            )
        kfp_mlflow.register(
            evaluations=dsl.Collected(scored.outputs["evaluation"]), model_name=model_name,
            primary_metric="", thresholds=[], min_improvement=0.0,
        )  # fmt: skip
