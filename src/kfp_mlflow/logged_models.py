"""A trained model leaves a task twice, from one directory: as the task's ``Output[Model]``
(for the next step) and as an MLflow LoggedModel of the task's run (for the registry).

:func:`publish_model` is what a user's own training component calls after saving any MLflow
model (``mlflow.sklearn.save_model``, ``mlflow.xgboost.save_model``, a pyfunc...) to
``model.path``: it uploads the directory once and writes the ``kfp_mlflow.model/v1`` record that
``evaluate`` and ``register`` read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from kfp_mlflow.contracts import ModelInfo, TaskType
from kfp_mlflow.exceptions import ContractError
from kfp_mlflow.tag_schema import TAG_CANDIDATE, TAG_FAMILY, TAG_MODEL_ID, TAG_RUN_NAME
from kfp_mlflow.tracking import TaskRun, current_run, mlflow_errors


class ModelArtifact(Protocol):
    path: str
    metadata: dict[str, Any]


def model_flavor(model_dir: str) -> str:
    """The MLflow flavor a model directory was saved with (``python_function`` if only that)."""
    import yaml

    mlmodel = Path(model_dir) / "MLmodel"
    if not mlmodel.is_file():
        raise ContractError(
            f"model: {model_dir} is not an MLflow model directory (no MLmodel file)",
            hint="save the model with mlflow.<flavor>.save_model(model, path) first",
        )
    flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
    if "python_function" not in flavors:
        raise ContractError(
            f"model: {model_dir} has no python_function flavor, so it cannot be scored",
            hint="save it with an MLflow flavor that supports pyfunc",
        )
    named = [name for name in flavors if name != "python_function"]
    return named[0] if named else "python_function"


def log_model_dir(
    run: TaskRun, model_dir: str, *, name: str, family: str, params: dict[str, Any], flavor: str
) -> str:
    """Upload a saved model directory as a LoggedModel of ``run`` (saved once, not twice)."""
    with mlflow_errors("log the trained model"):
        logged = run.client.create_logged_model(
            run.experiment_id,
            name=name,
            source_run_id=run.run_id,
            params={k: str(v) for k, v in params.items()},
            tags={TAG_FAMILY: family},
            model_type=flavor,
        )
        try:
            run.client.log_model_artifacts(logged.model_id, model_dir)
        except Exception:
            run.client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        run.client.finalize_logged_model(logged.model_id, "READY")
    run.set_tags({TAG_MODEL_ID: logged.model_id})
    return str(logged.model_id)


def publish_model(
    model: ModelArtifact,
    *,
    candidate: str,
    task: TaskType,
    family: str | None = None,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
    run: TaskRun | None = None,
) -> ModelInfo:
    """Log the MLflow model saved at ``model.path`` and stamp its ``ModelInfo`` on ``model``."""
    run = run or current_run()
    flavor = model_flavor(model.path)
    params = dict(params or {})
    model_id = log_model_dir(
        run, model.path, name=candidate, family=family or flavor, params=params, flavor=flavor
    )
    info = ModelInfo(
        candidate=candidate,
        family=family or flavor,
        task=task,
        params=params,
        seed=seed,
        flavor=flavor,
        train_run_id=run.run_id,
        model_id=model_id,
    )
    run.set_tags({TAG_CANDIDATE: candidate, TAG_RUN_NAME: f"{run.step}-{candidate}"})
    info.write(model)
    return info
