"""`preprocess`: read and validate the dataset; write train and test splits as Parquet."""

from kfp.dsl import Dataset, Output


def preprocess(
    data: str,
    target: str,
    task: str,
    seed: int,
    test_size: float,
    min_rows: int,
    train_data: Output[Dataset],
    test_data: Output[Dataset],
) -> None:
    """Each split carries a ``kfp_mlflow.dataset/v1`` record (target, task, digest, seed, ...).

    ``task`` is ``regression``, ``classification`` or empty (inferred from the target).
    """
    from kfp_mlflow.steps.preprocess import run_preprocess
    from kfp_mlflow.tracking.runs import current_run

    result = run_preprocess(
        current_run(),
        data=data,
        target=target,
        task=task,
        seed=seed,
        test_size=test_size,
        min_rows=min_rows,
        train_path=train_data.path,
        test_path=test_data.path,
    )
    result.train.write(train_data)
    result.test.write(test_data)
