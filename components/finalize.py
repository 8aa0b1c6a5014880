"""`finalize`: the exit handler; ends the MLflow parent run with the pipeline's final state."""

from kfp import dsl


def finalize(
    experiment_name: str,
    kfp_run_id: str,
    status: dsl.PipelineTaskFinalStatus,
) -> None:
    # On success `register`, the last step, has already ended the parent run: skip the
    # MLflow import (~2 s per process) on the happy path.
    if status.state == "SUCCEEDED":
        return
    from kfp_mlflow.tracking import close_parent_run

    close_parent_run(
        experiment_name=experiment_name,
        kfp_run_id=kfp_run_id,
        state=status.state,
        error_message=status.error_message or "",
    )
