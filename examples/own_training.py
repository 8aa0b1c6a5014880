"""Bring your own training step: a hand-written scikit-learn model, tuned over a small grid,
composed with kfp-mlflow's preprocess, evaluate and register, and judged on a custom metric.

    kfp-mlflow run --pipeline examples/own_training.py:own_training
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

import kfp_mlflow

# Any function f(y_true, y_pred) -> float, by import path; MAPE: lower is better.
MAPE = {
    "name": "mape",
    "function": "sklearn.metrics:mean_absolute_percentage_error",
    "direction": "min",
}


@kfp_mlflow.component
def train_knn(train_data: Input[Dataset], neighbours: int, model: Output[Model]) -> None:
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline

    import kfp_mlflow

    rows = kfp_mlflow.read_split(train_data, consumer="train_knn")
    knn = make_pipeline(
        kfp_mlflow.column_encoder(rows.features), KNeighborsRegressor(n_neighbors=neighbours)
    )
    kfp_mlflow.save_model(
        model, knn.fit(rows.features, rows.labels), rows.features,
        candidate=f"knn-{neighbours}", family="knn", task=rows.info.task,
        params={"n_neighbors": neighbours}, seed=rows.info.seed,
        # Reviewed: scikit-learn's KD-tree and distance metric, rebuilt from arrays on load.
        trusted_types=["sklearn.neighbors._kd_tree.KDTree",
                       "sklearn.metrics._dist_metrics.EuclideanDistance64"],
    )  # fmt: skip


@dsl.pipeline(name="own-training")
def own_training(
    data: str = "sklearn://diabetes",
    target: str = "disease_progression",
    model_name: str = "own-knn",
    primary_metric: str = "mape",
    thresholds: list = ["r2>=0.1"],
    min_improvement: float = 0.0,
    extra_metrics: list = [MAPE],
) -> None:
    with kfp_mlflow.exit_handler():
        split = kfp_mlflow.preprocess(
            data=data, target=target, task="regression", seed=7, test_size=0.2, min_rows=30
        )
        with dsl.ParallelFor([5, 25], name="neighbours") as neighbours:
            fit = train_knn(train_data=split.outputs["train_data"], neighbours=neighbours)
            scored = kfp_mlflow.evaluate(
                model=fit.outputs["model"], test_data=split.outputs["test_data"],
                extra_metrics=extra_metrics,
            )  # fmt: skip
        kfp_mlflow.register(
            evaluations=dsl.Collected(scored.outputs["evaluation"]), model_name=model_name,
            primary_metric=primary_metric, thresholds=thresholds, min_improvement=min_improvement,
        )  # fmt: skip
