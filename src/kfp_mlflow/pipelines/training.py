"""The training pipeline: preprocess → (train → evaluate) per candidate → register.

One composition of the public building blocks — exactly what a user pipeline looks like. The
whole graph sits inside ``kfp_mlflow.exit_handler()``, whose ``finalize`` task ends the MLflow
parent run with the pipeline's real final state, so a failed run never leaves it RUNNING.
"""

from typing import Any

from kfp import dsl

from kfp_mlflow.components import exit_handler, load_components
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.steps.search_space import default_candidates

PIPELINE_NAME = "kfp-mlflow-training"


def build_training_pipeline(settings: Settings | None = None) -> Any:
    """The pipeline, with parameter defaults taken from ``settings`` (environment by default)."""
    settings = settings or get_settings()
    c = load_components(settings.image)

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
        on_schema_change: str = settings.on_schema_change,
        seed: int = settings.seed,
        test_size: float = settings.test_size,
        min_rows: int = settings.min_rows,
    ) -> None:
        with exit_handler(image=settings.image):
            pre = c.preprocess(
                data=data,
                target=target,
                task=task,
                seed=seed,
                test_size=test_size,
                min_rows=min_rows,
            )
            # KFP's cache keys on the inputs' *values*: the same URI over changed data would hit
            # a stale entry. preprocess reads the outside world, so it always runs; downstream
            # tasks key on its outputs (a content digest travels in their metadata).
            pre.set_caching_options(False)
            with dsl.ParallelFor(candidates, name="candidates") as candidate:
                fit = c.train(candidate=candidate, train_data=pre.outputs["train_data"])
                scored = c.evaluate(model=fit.outputs["model"], test_data=pre.outputs["test_data"])
            c.register(
                evaluations=dsl.Collected(scored.outputs["evaluation"]),
                model_name=model_name,
                primary_metric=primary_metric,
                thresholds=thresholds,
                min_improvement=min_improvement,
                # No test_data: the winner meets @champion on the rows its evaluation record
                # points to, the same way in every pipeline built from these components.
                on_schema_change=on_schema_change,
            )

    return training_pipeline
