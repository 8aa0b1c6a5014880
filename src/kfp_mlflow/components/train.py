"""`train`: fit one candidate of the search space; the model leaves as an MLflow model directory."""

from kfp.dsl import Dataset, Input, Model, Output


def train(candidate: dict, train_data: Input[Dataset], model: Output[Model]) -> None:
    """``candidate`` is ``{"name": ..., "family": ..., "params": {...}}``; the target, task and
    seed come from ``train_data``'s ``kfp_mlflow.dataset/v1`` record. ``model`` gets a
    ``kfp_mlflow.model/v1`` record."""
    from kfp_mlflow.core.contracts import DatasetInfo
    from kfp_mlflow.steps.train import run_train
    from kfp_mlflow.tracking.runs import current_run

    run_train(
        current_run(),
        candidate=candidate,
        dataset=DatasetInfo.read(train_data, input_name="train_data", consumer="train"),
        train_path=train_data.path,
        model=model,
    )
