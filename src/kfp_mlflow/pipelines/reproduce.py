"""Rebuild a registered version from its recipe: preprocess the snapshot → train the winning
candidate → compare with the registered model on the same test split."""

from typing import Any

from kfp import dsl

from kfp_mlflow.components import exit_handler, load_components
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.dsl.factory import component

PIPELINE_NAME = "kfp-mlflow-reproduce"


def build_reproduce_pipeline(settings: Settings | None = None) -> Any:
    from kfp_mlflow.components.compare import compare

    settings = settings or get_settings()
    c = load_components(settings.image)
    check = component(compare, base_image=settings.image)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Rebuild a registered model version from its recipe and compare outputs.",
    )
    def reproduce_pipeline(
        model_name: str,
        version: str,
        data: str,
        target: str,
        task: str,
        seed: int,
        test_size: float,
        candidate: dict,
    ) -> None:
        with exit_handler(image=settings.image):
            # min_rows: the data already trained this version once; nothing to re-gate.
            pre = c.preprocess(
                data=data, target=target, task=task, seed=seed, test_size=test_size, min_rows=4
            )
            fit = c.train(candidate=candidate, train_data=pre.outputs["train_data"])
            check(
                model_name=model_name,
                version=version,
                model=fit.outputs["model"],
                test_data=pre.outputs["test_data"],
            )

    return reproduce_pipeline
