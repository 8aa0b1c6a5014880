"""The reference components: thin KFP wrappers around ``kfp_mlflow.steps``, one module per step.

Each is a tracked lightweight component (:func:`kfp_mlflow.component`) whose ``base_image`` is
the project image: the image holds this package and kfp, so a task needs no network at run
time, and ``kfp.local.SubprocessRunner`` runs the very same definition on a laptop. Use them as
``kfp_mlflow.preprocess`` / ``train`` / ``evaluate`` / ``register`` (built for the configured
image), or call :func:`load_components` for another image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class Components:
    """The reference components, all pinned to one image."""

    preprocess: Any
    train: Any
    evaluate: Any
    register: Any
    finalize: Any


@lru_cache(maxsize=8)
def load_components(image: str) -> Components:
    """Build every component for ``image`` (a pinned reference: never ``latest``)."""
    from kfp_mlflow.components import evaluate, finalize, preprocess, register, train
    from kfp_mlflow.dsl.factory import component

    return Components(
        preprocess=component(preprocess.preprocess, base_image=image),
        train=component(train.train, base_image=image),
        evaluate=component(evaluate.evaluate, base_image=image),
        register=component(register.register, base_image=image),
        finalize=component(finalize.finalize, base_image=image, track=False),
    )


def exit_handler(name: str = "tracked-run", image: str | None = None) -> Any:
    """``with kfp_mlflow.exit_handler(): ...`` inside a pipeline: whatever happens to the tasks
    in the block, a ``finalize`` task then ends the MLflow parent run with the pipeline's final
    state (FINISHED, FAILED, KILLED) and fails children left RUNNING.
    """
    from kfp import dsl

    from kfp_mlflow.core.settings import get_settings

    finalize = load_components(image or get_settings().image).finalize()
    finalize.set_display_name("finalize")
    return dsl.ExitHandler(finalize, name=name)
