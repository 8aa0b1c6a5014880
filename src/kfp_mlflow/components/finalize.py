"""`finalize`: the exit handler; ends the MLflow parent run with the pipeline's final state."""

from kfp import dsl


def finalize(status: dsl.PipelineTaskFinalStatus) -> None:
    """Ends the parent run (FINISHED, FAILED or KILLED) and fails any child left RUNNING."""
    from kfp_mlflow.tracking.runs import close_parent_run, current_kfp

    close_parent_run(
        kfp_run_id=current_kfp().run_id,
        state=status.state,
        error_message=status.error_message or "",
    )
