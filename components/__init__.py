"""KFP component definitions: thin wrappers around ``kfp_mlflow.steps``, one module per step.

Each component is a lightweight Python component whose ``base_image`` is the project image: the
image already holds this package and kfp, so a task needs no network at run time, and
``kfp.local.SubprocessRunner`` runs the very same definition on a laptop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kfp import dsl


@dataclass(frozen=True)
class Components:
    """The pipeline's components, all pinned to one image."""

    preprocess: Any
    train: Any
    evaluate: Any
    register: Any
    finalize: Any


def _component(func: Callable[..., Any], image: str) -> Any:
    return dsl.component(func=func, base_image=image, install_kfp_package=False)


def load_components(image: str) -> Components:
    """Build every component for ``image`` (a pinned reference: never ``latest``)."""
    from kfp_mlflow.components import evaluate, finalize, preprocess, register, train

    return Components(
        preprocess=_component(preprocess.preprocess, image),
        train=_component(train.train, image),
        evaluate=_component(evaluate.evaluate, image),
        register=_component(register.register, image),
        finalize=_component(finalize.finalize, image),
    )
