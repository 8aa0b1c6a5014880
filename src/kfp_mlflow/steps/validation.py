"""Fail fast: check a pipeline's arguments before any task runs.

``run``, ``compile`` and ``submit`` (and their Python counterparts) call
:func:`check_arguments` on the pipeline's parameters — defaults merged with the given
arguments — so that a typo in a threshold, an unknown hyperparameter or a model name MLflow would
reject ends the command in a second with one line and exit code 2, before a server starts or a
task trains. Checks are keyed by parameter *name*, so a user's pipeline that declares
``thresholds`` or ``candidates`` gets them too. ``preprocess``-time checks repeat what depends on
the data (the task type when it is inferred).
"""

from __future__ import annotations

from typing import Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.naming import check_model_name
from kfp_mlflow.models.metrics import TASK_METRICS, Direction, MetricSpec
from kfp_mlflow.models.sklearn_backend import Candidate, check_candidate
from kfp_mlflow.registry.policy import Policy

_TASKS = tuple(TASK_METRICS)


def check_arguments(values: dict[str, Any], *, import_metrics: bool = True) -> None:
    """Raise :class:`ConfigError` for the first argument that cannot work.

    ``import_metrics`` also imports custom metric functions (for local runs, where the tasks
    will import them from the same environment).
    """
    task = values.get("task") or None
    if task is not None and task not in _TASKS:
        raise ConfigError(f"task: {task!r} is not 'regression' or 'classification'")
    custom = check_extra_metrics(values.get("extra_metrics") or [], import_metrics)
    if "model_name" in values:
        check_model_name(str(values["model_name"]))
    if {"primary_metric", "thresholds", "min_improvement"} & set(values):
        check_policy(values, task, custom)
    if "candidates" in values:
        check_candidates(values["candidates"], task, values.get("seed", 0))
    if "test_size" in values and not 0 < float(values["test_size"]) < 1:
        raise ConfigError(f"test_size: {values['test_size']} must be between 0 and 1")
    if "min_rows" in values and int(values["min_rows"]) < 4:
        raise ConfigError(f"min_rows: {values['min_rows']} must be at least 4")


def metric_constants(pipeline_spec: dict[str, Any]) -> list[Any]:
    """The custom metrics a compiled pipeline gives its tasks as constants (``extra_metrics``
    inputs that are not pipeline parameters), from the IR as a plain dict."""
    found: list[Any] = []
    dags = [pipeline_spec.get("root", {}), *pipeline_spec.get("components", {}).values()]
    for dag in dags:
        for task in dag.get("dag", {}).get("tasks", {}).values():
            given = task.get("inputs", {}).get("parameters", {}).get("extra_metrics", {})
            constant = given.get("runtimeValue", {}).get("constant")
            if isinstance(constant, list):
                found += [item for item in constant if item not in found]
    return found


def check_extra_metrics(raw: list[Any], import_functions: bool) -> dict[str, Direction]:
    specs = [MetricSpec.parse(item) for item in raw]
    if import_functions:
        for spec in specs:
            spec.load()
    return {spec.name: spec.direction for spec in specs}


def check_policy(values: dict[str, Any], task: str | None, custom: dict[str, Direction]) -> None:
    """The primary metric, thresholds and margin, against the task (or any task, if unknown)."""
    thresholds = values.get("thresholds") or []
    if isinstance(thresholds, str):
        raise ConfigError(
            f"thresholds: {thresholds!r} must be a list", hint='e.g. ["r2>=0.3", "rmse<=60"]'
        )
    try:
        min_improvement = float(values.get("min_improvement", 0.0))
    except (TypeError, ValueError):
        raise ConfigError(
            f"min_improvement: {values['min_improvement']!r} is not a number"
        ) from None
    errors: list[ConfigError] = []
    for candidate_task in (task,) if task else _TASKS:
        try:
            Policy.for_task(
                candidate_task,
                str(values.get("primary_metric") or ""),
                [str(t) for t in thresholds],
                min_improvement,
                custom,
                str(values.get("on_schema_change") or "block"),
            )
            return
        except ConfigError as error:
            errors.append(error)
    # Unknown task: the policy must fit at least one; report the first task's complaint.
    raise errors[0]


def check_candidates(raw: Any, task: str | None, seed: Any = 0) -> None:
    """Every candidate names a known family whose estimator accepts its hyperparameters."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("candidates: the search space is empty", hint="give at least one")
    names: set[str] = set()
    for item in raw:
        candidate = Candidate.parse(item)
        if candidate.name in names:
            raise ConfigError(
                f"candidates: name {candidate.name!r} is used twice",
                hint="give every candidate a unique name",
            )
        names.add(candidate.name)
        errors: list[ConfigError] = []
        for candidate_task in (task,) if task else _TASKS:
            try:
                check_candidate(candidate, candidate_task, int(seed or 0))
                break
            except ConfigError as error:
                errors.append(error)
        else:
            raise errors[0]
