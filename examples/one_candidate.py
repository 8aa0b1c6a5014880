"""One candidate of your own, judged on a custom metric, behind a validation step of your own:
the case docs/extending.md walks through ("Your own model, one candidate").

    kfp-mlflow run --pipeline examples/one_candidate.py:one_candidate   # from the repository root

The data is scikit-learn's diabetes set with a text column added (``bmi_band``, the WHO band of
each patient's BMI), so the model has a categorical column to encode. On a cluster, pass
``--arg data=s3://...`` (or any URI ``preprocess`` reads).
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

import kfp_mlflow

# Any f(y_true, y_pred) -> float by import path. Median absolute error: lower is better.
MEDAE = {"name": "medae", "function": "sklearn.metrics:median_absolute_error", "direction": "min"}


@kfp_mlflow.component
def validate_missing(data: Input[Dataset], max_share: float, report: Output[Metrics]) -> None:
    import kfp_mlflow

    rows = kfp_mlflow.read_split(data, consumer="validate_missing")
    worst = float(rows.features.isna().mean().max())
    report.log_metric("max_missing_share", worst)  # KFP UI and MLflow, pass or fail
    if worst > max_share:
        raise kfp_mlflow.DataError(f"data: a column is {worst:.0%} missing (limit {max_share:.0%})")


@kfp_mlflow.component
def train_extra_trees(train_data: Input[Dataset], trees: int, model: Output[Model]) -> None:
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.pipeline import make_pipeline

    import kfp_mlflow

    rows = kfp_mlflow.read_split(train_data, consumer="train_extra_trees")
    forest = make_pipeline(
        kfp_mlflow.column_encoder(rows.features),  # numbers scaled, text one-hot encoded
        ExtraTreesRegressor(n_estimators=trees, random_state=rows.info.seed, n_jobs=1),
    )
    kfp_mlflow.save_model(  # skops, signature, input example; logged and published
        model, forest.fit(rows.features, rows.labels), rows.features,
        candidate=f"extra-trees-{trees}", task=rows.info.task,
        params={"n_estimators": trees}, seed=rows.info.seed,
    )  # fmt: skip


@dsl.pipeline(name="one-candidate")
def one_candidate(
    data: str = "examples/data/diabetes_bmi_bands.csv",
    model_name: str = "one-candidate",
    trees: int = 100,
    primary_metric: str = "medae",
    min_improvement: float = 0.0,
) -> None:
    with kfp_mlflow.exit_handler():
        split = kfp_mlflow.preprocess(
            data=data, target="disease_progression", task="regression", seed=7, test_size=0.2,
            min_rows=30,
        )  # fmt: skip
        checked = validate_missing(data=split.outputs["train_data"], max_share=0.2)
        fit = train_extra_trees(train_data=split.outputs["train_data"], trees=trees)
        fit.after(checked)
        scored = kfp_mlflow.evaluate(
            model=fit.outputs["model"], test_data=split.outputs["test_data"], extra_metrics=[MEDAE]
        )
        kfp_mlflow.register(
            evaluation=scored.outputs["evaluation"], model_name=model_name,
            primary_metric=primary_metric, thresholds=["r2>=0.1"], min_improvement=min_improvement,
        )  # fmt: skip
