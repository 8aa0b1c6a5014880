"""MLflow runs a step opens itself carry the task's identity (an MLflow run-context plugin).

A step may open runs of its own: ``mlflow.start_run(nested=True)`` in user code,
``mlflow.models.evaluate`` in the head-to-head. MLflow asks every registered run-context
provider (entry-point group ``mlflow.run_context_provider``, declared in ``pyproject.toml``)
for tags whenever the fluent API creates a run. Inside a ``kfp_mlflow.component`` task this one
adds the KFP run and task and, unless the step nested the run itself, makes it a child of the
task's run. So every run a task opens is found by its KFP run id — by the runner when the task
dies, by ``runs reconcile``, by the exit handler — and nothing stays RUNNING unseen.
"""

from __future__ import annotations

from mlflow.tracking.context.abstract_context import RunContextProvider

from kfp_mlflow.core.tag_schema import TAG_KFP_RUN_ID, TAG_KFP_TASK_NAME, TAG_PARENT


class TaskRunContext(RunContextProvider):  # type: ignore[misc]
    def in_context(self) -> bool:
        from kfp_mlflow.tracking.runs import active_task_run

        return active_task_run() is not None

    def tags(self) -> dict[str, str]:
        from kfp_mlflow.tracking.runs import active_task_run

        run = active_task_run()
        if run is None:
            return {}
        return {
            TAG_KFP_RUN_ID: run.kfp.run_id,
            TAG_KFP_TASK_NAME: run.kfp.task_name or run.step,
            TAG_PARENT: run.run_id,
        }
