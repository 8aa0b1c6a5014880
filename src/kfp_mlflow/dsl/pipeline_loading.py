"""Find a pipeline by reference: ``path/to/file.py:name`` or ``package.module:name``.

``name`` is a ``@dsl.pipeline`` function, or a callable taking no arguments (or the settings)
that returns one — the shape of :func:`kfp_mlflow.build_training_pipeline`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.settings import Settings, get_settings

#: The reference training pipeline, loaded by name as a user's pipeline is (the pipelines sit
#: above this loader in the package's layers).
DEFAULT_PIPELINE = "kfp_mlflow.pipelines.training:build_training_pipeline"


def load_pipeline(reference: str | None, settings: Settings | None = None) -> Any:
    """The pipeline ``reference`` names; the reference training pipeline when it is None."""
    from kfp.dsl.graph_component import GraphComponent

    settings = settings or get_settings()
    if reference is None:
        reference = DEFAULT_PIPELINE
    location, _, name = reference.rpartition(":")
    if not location or not name:
        raise ConfigError(
            f"--pipeline: {reference!r} is not module:name or file.py:name",
            hint="e.g. --pipeline examples/own_training.py:xgb_pipeline",
        )
    module = _import(location, reference)
    target = getattr(module, name, None)
    if target is None:
        raise ConfigError(f"--pipeline: {location} has no attribute {name!r}")
    if not isinstance(target, GraphComponent) and callable(target):
        wants_settings = bool(inspect.signature(target).parameters)
        target = target(settings) if wants_settings else target()
    if not isinstance(target, GraphComponent):
        raise ConfigError(
            f"--pipeline: {reference} is not a pipeline (a @dsl.pipeline function)",
            hint="decorate it with @kfp.dsl.pipeline, or point at a function that returns one",
        )
    return target


def _import(location: str, reference: str) -> Any:
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise ConfigError(f"--pipeline: file not found: {location}")
        # The file's own directory is importable, as for `python file.py`: tasks import helper
        # modules beside it the same way.
        sys.path.insert(0, str(path.resolve().parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        try:
            spec.loader.exec_module(module)
        except ConfigError:
            raise
        except Exception as error:  # the user's module: report, not crash
            raise ConfigError(
                f"--pipeline: {location} failed to load: {type(error).__name__}: {error}",
                hint="run it with python to see the traceback",
            ) from error
        return module
    try:
        return importlib.import_module(location)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(
            f"--pipeline: cannot import {location!r}: {type(error).__name__}: {error}"
        ) from error


def pipeline_parameters(pipeline: Any) -> dict[str, Any]:
    """The pipeline's parameters with their defaults (``None`` for required ones)."""
    inputs = pipeline.component_spec.inputs or {}
    return {name: spec.default for name, spec in inputs.items() if not spec.is_artifact_list}


def merged_arguments(pipeline: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """Defaults overridden by ``arguments``; an argument the pipeline lacks is an error."""
    parameters = pipeline_parameters(pipeline)
    unknown = sorted(set(arguments) - set(parameters))
    if unknown:
        raise ConfigError(
            f"{pipeline.name}: no parameter {unknown[0]!r}",
            hint=f"its parameters are: {', '.join(parameters) or 'none'}",
        )
    merged = {**parameters, **arguments}
    if "extra_metrics" not in merged:
        # Custom metrics given to evaluate as constants are what the policy's parameters may
        # name (primary_metric="medae"): checked like a parameter, typos still caught.
        from google.protobuf import json_format

        from kfp_mlflow.steps.validation import metric_constants

        spec = json_format.MessageToDict(pipeline.pipeline_spec)
        merged["extra_metrics"] = metric_constants(spec)
    return merged


_KINDS: dict[str, tuple[type, ...]] = {
    "Float": (float,),
    "Integer": (int,),
    "Boolean": (bool,),
    "String": (str,),
    "List": (list,),
    "Dict": (dict,),
}


def coerce_arguments(pipeline: Any, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as the pipeline's parameter types want them (``--arg seconds=0`` is a float
    for a float parameter); a value of another kind is an error naming the parameter."""
    inputs = pipeline.component_spec.inputs or {}
    coerced = {}
    for name, given in arguments.items():
        kind = getattr(inputs.get(name), "type", None)
        value = float(given) if kind == "Float" and type(given) is int else given
        expected = _KINDS.get(str(kind))
        if (expected and not isinstance(value, expected)) or (
            kind in ("Float", "Integer") and isinstance(value, bool)
        ):
            raise ConfigError(
                f"{name}: {value!r} has the wrong type (the parameter is a {kind})",
                hint="JSON values: --arg seed=7, --arg 'items=[1, 2]', --arg name='\"text\"'",
            )
        coerced[name] = value
    return coerced
