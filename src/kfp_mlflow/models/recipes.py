"""What it takes to rebuild a registered version, recorded on it as one JSON tag.

The data (an immutable snapshot), the split (target, task, seed, test size) and the winning
candidate (family and hyperparameters); the environment is recorded beside it as package
versions, image reference and id, lock hash and git commit (``kfp_mlflow.tracking.provenance``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from kfp_mlflow.core.contracts import EvaluationInfo
from kfp_mlflow.core.exceptions import ConfigError


class Recipe(BaseModel):
    model_config = ConfigDict(frozen=True)

    data: str
    target: str
    task: str
    seed: int
    test_size: float
    candidate: dict[str, Any]


def recipe(winner: EvaluationInfo) -> Recipe | None:
    """The recipe of ``winner``; None when its evaluation lacks the data side (a user's own
    evaluate step that did not forward it): the version still registers, unreproducible."""
    if winner.snapshot_uri is None or winner.target is None or winner.test_size is None:
        return None
    return Recipe(
        data=winner.snapshot_uri,
        target=winner.target,
        task=winner.task,
        seed=int(winner.seed or 0),
        test_size=winner.test_size,
        candidate={"name": winner.candidate, "family": winner.family, "params": winner.params},
    )


def parse_recipe(raw: str | None, where: str) -> Recipe:
    if not raw:
        raise ConfigError(
            f"{where} has no recipe (kfp_mlflow.recipe tag)",
            hint="only versions registered by kfp-mlflow's register step can be reproduced",
        )
    try:
        return Recipe.model_validate_json(raw)
    except ValueError as error:
        raise ConfigError(f"{where}: unreadable recipe ({error.__class__.__name__})") from None
