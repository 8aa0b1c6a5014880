"""A trained model leaves a task twice, from one directory: as the task's ``Output[Model]``
(for the next step) and as an MLflow LoggedModel of the task's run (for the registry).

:func:`save_model` is what a user's own training component calls with its fitted model: it
saves it into ``model.path`` in a safe format with a signature and an input example, then
publishes it. :func:`publish_model` is the second half alone, for a directory saved some other
way (``mlflow.<flavor>.save_model``): it uploads the directory once and writes the
``kfp_mlflow.model/v1`` record that ``evaluate`` and ``register`` read.

Safe means no pickle: loading a pickle runs whatever code it names, so a registry of pickles
is a registry of code nobody reviewed. scikit-learn models (and anything with its API) are
saved with skops, trusting exactly the types the model holds, each of which must be on the
reviewed list (:data:`kfp_mlflow.models.sklearn_backend.SKOPS_TRUSTED_TYPES`, every registered
family's
``trusted_types``) or named by the caller after review; the list is stored in the MLmodel file
and tagged on the run. XGBoost and LightGBM boosters and Spark ML models use their framework's
own format through MLflow's flavor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

from kfp_mlflow.core.contracts import ModelInfo, TaskType
from kfp_mlflow.core.exceptions import ContractError
from kfp_mlflow.core.tag_schema import (
    TAG_CANDIDATE,
    TAG_FAMILY,
    TAG_MODEL_ID,
    TAG_RUN_NAME,
    TAG_SKOPS_TRUSTED_TYPES,
)
from kfp_mlflow.tracking.runs import TaskRun, current_run, mlflow_errors


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
    run.set_tags(
        {TAG_CANDIDATE: candidate, TAG_RUN_NAME: f"{run.kfp.task_name or run.step}-{candidate}"}
    )
    info.write(model)
    return info


#: Rows used to infer the signature, and rows kept as the input example.
_SIGNATURE_ROWS = 50
_EXAMPLE_ROWS = 5


def save_model(
    model: ModelArtifact,
    fitted: Any,
    features: pd.DataFrame,
    *,
    candidate: str,
    task: TaskType,
    params: dict[str, Any] | None = None,
    seed: int | None = None,
    family: str | None = None,
    trusted_types: Sequence[str] = (),
    run: TaskRun | None = None,
) -> ModelInfo:
    """Save ``fitted`` into ``model.path`` as an MLflow model, then :func:`publish_model` it.

    ``features`` are the training columns as the model takes them (a few rows become the
    signature and the input example). ``fitted`` is a scikit-learn estimator or pipeline, or
    anything with its API (xgboost's and lightgbm's included), saved with skops; an XGBoost or
    LightGBM ``Booster`` or an XGBoost estimator on its own, saved in XGBoost's / LightGBM's
    own format; or a fitted Spark ML model. ``trusted_types`` adds types you reviewed to the
    skops allowlist (a model holding an unreviewed type is refused here, naming it, rather than
    at load time). ``family`` defaults to the final estimator's class name.
    """
    from kfp_mlflow.data.datasets import as_model_input

    run = run or current_run()
    sample = as_model_input(features.head(_SIGNATURE_ROWS))
    kind = _kind(fitted)
    name = family or _class_name(fitted)
    if kind == "spark":
        _save_spark(fitted, sample, model.path, name)
    elif kind in ("xgboost", "lightgbm"):
        _save_native(kind, fitted, sample, model.path)
    else:
        trusted = _save_skops(fitted, sample, model.path, trusted_types)
        # What loading this model will trust, beside the model: reviewable on the run.
        run.set_tags({TAG_SKOPS_TRUSTED_TYPES: ",".join(trusted)[:4000]})
    return publish_model(
        model, candidate=candidate, task=task, family=name, params=params, seed=seed, run=run
    )


def _kind(fitted: Any) -> str:
    module = type(fitted).__module__
    if module.startswith("pyspark.ml"):
        return "spark"
    if module.startswith("xgboost"):
        return "xgboost"  # a Booster or an XGBModel on its own: XGBoost's own format
    if module.startswith("lightgbm") and type(fitted).__name__ == "Booster":
        return "lightgbm"  # mlflow.lightgbm pickles the scikit-learn API ones: skops for those
    if hasattr(fitted, "get_params") and hasattr(fitted, "predict"):
        return "sklearn"
    raise ContractError(
        f"save_model: cannot save a {type(fitted).__module__}.{type(fitted).__name__} safely",
        hint="pass a fitted scikit-learn estimator or pipeline (or one with its API), an "
        "XGBoost/LightGBM model or a Spark ML model; for anything else save an MLflow model "
        "yourself and call kfp_mlflow.publish_model",
    )


def _class_name(fitted: Any) -> str:
    steps = getattr(fitted, "steps", None)
    final = steps[-1][1] if steps else fitted
    return type(final).__name__


def _requirements(*modules: str) -> list[str]:
    from importlib import metadata

    from kfp_mlflow.tracking.provenance import pip_requirements

    pinned = pip_requirements()
    for module in modules:
        try:
            pinned.append(f"{module}=={metadata.version(module)}")
        except metadata.PackageNotFoundError:
            continue
    return sorted(set(pinned))


def _save_skops(fitted: Any, sample: pd.DataFrame, path: str, extra: Sequence[str]) -> list[str]:
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    from kfp_mlflow.models.families import registered_families
    from kfp_mlflow.models.sklearn_backend import SKOPS_TRUSTED_TYPES

    reviewed = {*SKOPS_TRUSTED_TYPES, *extra}
    for declared in registered_families().values():
        reviewed.update(declared.trusted_types)
    held = sorted(set(skops.io.get_untrusted_types(data=skops.io.dumps(fitted))))
    unreviewed = [name for name in held if name not in reviewed]
    if unreviewed:
        raise ContractError(
            f"save_model: the model holds types nobody reviewed: {', '.join(unreviewed)}",
            hint="check what each one can do when loaded, then pass "
            "trusted_types=[...] naming them",
        )
    modules = {name.split(".")[0] for name in held} & {"xgboost", "lightgbm"}
    mlflow.sklearn.save_model(
        fitted,
        path,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        skops_trusted_types=held,
        signature=infer_signature(sample, fitted.predict(sample)),
        input_example=sample.head(_EXAMPLE_ROWS),
        pip_requirements=_requirements(*sorted(modules)),
    )
    return held


def _save_native(kind: str, fitted: Any, sample: pd.DataFrame, path: str) -> None:
    from mlflow.models import infer_signature

    if kind == "xgboost":
        import mlflow.xgboost

        predictions = _xgboost_predict(fitted, sample)
        mlflow.xgboost.save_model(
            fitted, path, model_format="ubj",
            signature=infer_signature(sample, predictions),
            input_example=sample.head(_EXAMPLE_ROWS),
            pip_requirements=_requirements("xgboost"),
        )  # fmt: skip
    else:
        import mlflow.lightgbm

        mlflow.lightgbm.save_model(
            fitted, path,
            signature=infer_signature(sample, fitted.predict(sample)),
            input_example=sample.head(_EXAMPLE_ROWS),
            pip_requirements=_requirements("lightgbm"),
        )  # fmt: skip


def _xgboost_predict(fitted: Any, sample: pd.DataFrame) -> Any:
    if hasattr(fitted, "get_params"):  # the scikit-learn API
        return fitted.predict(sample)
    import xgboost

    return fitted.predict(xgboost.DMatrix(sample))


def _save_spark(fitted: Any, sample: pd.DataFrame, path: str, name: str) -> None:
    from kfp_mlflow.models.families import Family
    from kfp_mlflow.models.spark_backend import SPARK

    family = Family(name=name, preprocessing="none", requirements=("pyspark",))
    SPARK.save(family, fitted, sample, path)
