"""Checks on compiled KFP IR that catch, at compile time, graphs the backend would fail at run time.

kubeflow/pipelines#12390 ("ParallelFor inside ExitHandler fails", open in 2.17): when a loop body
interpolates the loop item in a string (``message=f"x {item}"``), the 2.17 SDK compiler
(``compiler_utils.py``) treats the item as a pipeline input and wires a bogus
``pipelinechannel--<list>-loop-item`` input onto every enclosing non-loop group (ExitHandler,
If), fed from a parent that has no such parameter. The run then fails in that group's driver
("parent DAG does not have input parameter"), visible only in the driver pod's log. Compiled with
kfp 2.17.0, the bad shape reads::

    root.dag.tasks.exit-handler-1.inputs.parameters:
      pipelinechannel--xs-loop-item: {componentInputParameter: xs-loop-item}  # root has `xs` only
    components.comp-exit-handler-1.inputDefinitions.parameters:
      pipelinechannel--xs-loop-item: {parameterType: STRING}

and the same f-string under an ``If`` *inside* the loop leaves the condition group without the
input its task reads. A loop-item input is legitimate only where an enclosing loop provides it:
on the loop's own iteration DAG (the ``itemInput`` of the iterator on its task in the parent DAG)
and on groups nested inside it, each fed from a parent that declares it.

This module reads the IR as a plain dict (no kfp import), so it runs anywhere; only
:func:`check_pipeline` compiles, importing kfp lazily.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from kfp_mlflow.core.exceptions import ConfigError

LOOP_ITEM = "-loop-item"
ROOT = "root"
_FIX = (
    "pass the loop item to a component and build the string inside it "
    "(kubeflow/pipelines#12390: an f-string of the item compiles to a run that fails)"
)


def check_pipeline_spec(pipeline_spec: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` if a non-loop group would lack a ParallelFor loop item at run
    time (the #12390 shape); return quietly for valid IR.

    ``pipeline_spec`` is the first document of a compiled IR YAML (or a PipelineVersion's
    ``spec.pipelineSpec``).
    """
    dags = _dags(pipeline_spec)
    # First the shape as it is reported: a group declaring a loop item its parent cannot feed.
    for parent, task_name, task in _tasks(dags):
        group = task.get("componentRef", {}).get("name", "")
        if group not in dags or _iterator_item(task) is not None:
            continue  # a container task, or a loop's iteration DAG (the iterator feeds it)
        inputs = task.get("inputs", {}).get("parameters", {})
        for name in _declared(dags[group]):
            if LOOP_ITEM not in name:
                continue
            source = inputs.get(name, {}).get("componentInputParameter")
            if source is None or source not in _declared(dags[parent]):
                raise ConfigError(
                    f"pipeline group {group} (task {task_name} in {parent}) declares input "
                    f"{name}, a ParallelFor loop item no enclosing loop provides",
                    hint=_FIX,
                )
    # Then its mirror image: a task inside a group reads a loop item the group never receives.
    for parent, task_name, task in _tasks(dags):
        own_item = None if parent == ROOT else _feeding_item(dags, parent)
        for name, value in task.get("inputs", {}).get("parameters", {}).items():
            source = value.get("componentInputParameter")
            if source is None or LOOP_ITEM not in source:
                continue
            if source not in _declared(dags[parent]) and source != own_item:
                raise ConfigError(
                    f"pipeline group {parent} lacks input {source}, a ParallelFor loop item its "
                    f"task {task_name} reads (as {name})",
                    hint=_FIX,
                )

    _check_one_of(pipeline_spec, dags)


#: Optional artifact inputs of which a task must be given at least one: ``register`` takes its
#: candidates as a list (``evaluations``), as one (``evaluation``) or both, and KFP's type system
#: cannot say "one of". Without this check the mistake would surface after every model trained.
ONE_OF_INPUTS: tuple[tuple[str, ...], ...] = (("evaluations", "evaluation"),)


def _check_one_of(pipeline_spec: dict[str, Any], dags: dict[str, dict[str, Any]]) -> None:
    components = pipeline_spec.get("components", {})
    for _, task_name, task in _tasks(dags):
        component = components.get(task.get("componentRef", {}).get("name", ""), {})
        declared = component.get("inputDefinitions", {}).get("artifacts", {})
        wired = task.get("inputs", {}).get("artifacts", {})
        for names in ONE_OF_INPUTS:
            if set(names) <= set(declared) and not set(names) & set(wired):
                raise ConfigError(
                    f"task {task_name} is given none of its inputs {' / '.join(names)}",
                    hint="pass evaluations=dsl.Collected(scored.outputs['evaluation']) for a "
                    "loop of candidates, or evaluation=scored.outputs['evaluation'] for one",
                )


def check_pipeline(pipeline_func: Callable[..., Any]) -> None:
    """Compile ``pipeline_func`` (a ``@dsl.pipeline``) to a temporary file and check its IR."""
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="kfp-mlflow-ir-check-") as tmp:
        path = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline_func, str(path))
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    check_pipeline_spec(documents[0])


def _dags(pipeline_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every DAG by component name, the pipeline's own as ``root``."""
    dags = {
        name: component
        for name, component in pipeline_spec.get("components", {}).items()
        if "dag" in component
    }
    dags[ROOT] = pipeline_spec.get("root", {})
    return dags


def _tasks(dags: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for dag_name in sorted(dags):
        for task_name, task in sorted(dags[dag_name].get("dag", {}).get("tasks", {}).items()):
            yield dag_name, task_name, task


def _declared(component: dict[str, Any]) -> set[str]:
    return set(component.get("inputDefinitions", {}).get("parameters", {}))


def _iterator_item(task: dict[str, Any]) -> str | None:
    """The loop item a ParallelFor task feeds its iteration DAG, or None for any other task."""
    for key in ("parameterIterator", "artifactIterator"):
        if key in task:
            item: str = task[key].get("itemInput", "")
            return item
    return None


def _feeding_item(dags: dict[str, dict[str, Any]], group: str) -> str | None:
    """The item input of the loop whose iteration DAG is ``group``, if it is one."""
    for _, _, task in _tasks(dags):
        if task.get("componentRef", {}).get("name") == group:
            item = _iterator_item(task)
            if item is not None:
                return item
    return None
