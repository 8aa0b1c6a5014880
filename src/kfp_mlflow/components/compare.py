"""`compare`: a rebuilt model against the registered version, on the same test split."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output


def compare(
    model_name: str,
    version: str,
    model: Input[Model],
    test_data: Input[Dataset],
    comparison: Output[Artifact],
) -> float:
    """Returns the max absolute difference; ``comparison`` gets a ``kfp_mlflow.reproduction/v1``
    record (also naming the packages whose versions differ from the registered run's)."""
    from kfp_mlflow.core.contracts import DatasetInfo
    from kfp_mlflow.steps.compare import run_compare
    from kfp_mlflow.tracking.runs import current_run

    result = run_compare(
        current_run(),
        model_name=model_name,
        version=version,
        rebuilt_dir=model.path,
        test_path=test_data.path,
        dataset=DatasetInfo.read(test_data, input_name="test_data", consumer="compare"),
    )
    result.write(comparison)
    with open(comparison.path, "w") as out:
        out.write(result.model_dump_json(indent=2))
    return result.max_abs_diff
