"""`preprocess`: read and validate the dataset, split it, open the pipeline's MLflow parent run."""

from typing import NamedTuple

from kfp.dsl import Dataset, Output


def preprocess(
    data: str,
    target: str,
    task: str,
    seed: int,
    test_size: float,
    min_rows: int,
    experiment_name: str,
    kfp_run_id: str,
    kfp_run_name: str,
    kfp_task_name: str,
    train_data: Output[Dataset],
    test_data: Output[Dataset],
) -> NamedTuple("Outputs", [("parent_run_id", str), ("task", str)]):  # type: ignore[valid-type]
    from kfp_mlflow.steps.preprocess import run_preprocess
    from kfp_mlflow.tracking import KfpContext

    result = run_preprocess(
        data=data,
        target=target,
        task=task,
        seed=seed,
        test_size=test_size,
        min_rows=min_rows,
        experiment_name=experiment_name,
        kfp=KfpContext(run_id=kfp_run_id, run_name=kfp_run_name, task_name=kfp_task_name),
        train_path=train_data.path,
        test_path=test_data.path,
    )
    train_data.metadata.update(result.train_metadata)
    test_data.metadata.update(result.test_metadata)
    return (result.parent_run_id, result.task)  # type: ignore[return-value]
