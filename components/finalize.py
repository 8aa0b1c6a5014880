"""`finalize`: the exit handler; ends the MLflow parent run with the pipeline's final state."""

from kfp import dsl


def finalize(
    experiment_name: str,
    kfp_run_id: str,
    status: dsl.PipelineTaskFinalStatus,
) -> None:
    from kfp_mlflow.tracking import close_parent_run

    close_parent_run(
        experiment_name=experiment_name,
        kfp_run_id=kfp_run_id,
        state=status.state,
        error_message=status.error_message or "",
    )
