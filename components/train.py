"""`train`: fit one candidate of the search space; the model leaves as an MLflow model directory."""

from kfp.dsl import Dataset, Input, Model, Output


def train(
    candidate: dict,
    train_data: Input[Dataset],
    target: str,
    seed: int,
    kfp_run_id: str,
    kfp_run_name: str,
    kfp_task_name: str,
    model: Output[Model],
) -> str:
    from kfp_mlflow.steps.train import run_train
    from kfp_mlflow.tracking import KfpContext

    result = run_train(
        candidate=candidate,
        train_path=train_data.path,
        target=target,
        # Read from the dataset's metadata: kfp.local resolves upstream output parameters
        # wrongly inside a ParallelFor, while artifact metadata travels intact everywhere.
        task=train_data.metadata["task"],
        seed=seed,
        parent_run_id=train_data.metadata["parent_run_id"],
        kfp=KfpContext(run_id=kfp_run_id, run_name=kfp_run_name, task_name=kfp_task_name),
        model_dir=model.path,
    )
    model.metadata.update(result.metadata)
    return result.run_id
