"""The training pipeline: preprocess → (train → evaluate) per candidate → register.

The whole graph sits inside an ExitHandler whose `finalize` task ends the MLflow parent run with
the pipeline's real final state, so a failed or cancelled run never leaves it RUNNING.
"""

from typing import Any

from kfp import dsl
from kfp_mlflow.components import Components, load_components
from kfp_mlflow.components.platform import configure_task

from kfp_mlflow.search_space import default_candidates
from kfp_mlflow.settings import Settings, get_settings

PIPELINE_NAME = "kfp-mlflow-training"

# Every task gets the KFP run and task identity, resolved by KFP (or kfp.local) at run time.
_KFP_IDENTITY = {
    "kfp_run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    "kfp_run_name": dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    "kfp_task_name": dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
}


def build_training_pipeline(
    settings: Settings | None = None, components: Components | None = None
) -> Any:
    """The pipeline, with parameter defaults taken from ``settings`` (environment by default)."""
    settings = settings or get_settings()
    c = components or load_components(settings.image)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description=(
            "Train candidate models, track every step in MLflow, register the best and promote "
            "it to @champion when it beats the current one."
        ),
    )
    def training_pipeline(
        data: str = settings.data,
        target: str = settings.target,
        task: str = settings.task or "",
        model_name: str = settings.model_name,
        candidates: list = default_candidates(),  # noqa: B008  (a fresh copy per build)
        primary_metric: str = settings.primary_metric or "",
        thresholds: list = list(settings.thresholds or []),  # noqa: B006
        min_improvement: float = settings.min_improvement,
        seed: int = settings.seed,
        test_size: float = settings.test_size,
        min_rows: int = settings.min_rows,
        experiment_name: str = settings.experiment_name,
    ) -> None:
        finalize = configure_task(
            c.finalize(experiment_name=experiment_name, kfp_run_id=_KFP_IDENTITY["kfp_run_id"])
        ).set_display_name("finalize")
        with dsl.ExitHandler(finalize, name="tracked-run"):
            pre = configure_task(
                c.preprocess(
                    data=data,
                    target=target,
                    task=task,
                    seed=seed,
                    test_size=test_size,
                    min_rows=min_rows,
                    experiment_name=experiment_name,
                    **_KFP_IDENTITY,
                )
            )
            tracked = {"parent_run_id": pre.outputs["parent_run_id"], **_KFP_IDENTITY}
            with dsl.ParallelFor(candidates, name="candidates") as candidate:
                fit = configure_task(
                    c.train(
                        candidate=candidate,
                        train_data=pre.outputs["train_data"],
                        target=target,
                        seed=seed,
                        **_KFP_IDENTITY,
                    )
                )
                scored = configure_task(
                    c.evaluate(
                        model=fit.outputs["model"],
                        test_data=pre.outputs["test_data"],
                        target=target,
                        **_KFP_IDENTITY,
                    )
                )
            chosen = configure_task(
                c.register(
                    evaluations=dsl.Collected(scored.outputs["metrics"]),
                    model_name=model_name,
                    primary_metric=primary_metric,
                    thresholds=thresholds,
                    min_improvement=min_improvement,
                    task=pre.outputs["task"],
                    **tracked,
                )
            )
        del chosen  # its decision artifact is read back by the runner and by the KFP UI

    return training_pipeline
