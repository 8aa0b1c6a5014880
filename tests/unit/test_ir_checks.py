"""The #12390 guard, on IR really compiled by kfp 2.17.0 (no hand-written IR).

Each pipeline below is the smallest graph showing one shape: the bad ones are the f-string of a
loop item that the 2.17 compiler turns into an input no parent can feed; the good ones pass the
item straight to a component, which compiles to IR the backend resolves.
"""

# No `from __future__ import annotations`: kfp reads the component signatures' real types.
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import compiler, dsl

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.dsl.ir_checks import check_pipeline, check_pipeline_spec

FIX = "pass the loop item to a component and build the string inside it"


@dsl.component(base_image="python:3.11")
def echo(message: str) -> None:
    print(message)


@dsl.component(base_image="python:3.11")
def make_items() -> list:  # type: ignore[type-arg]
    return [1, 2]


@dsl.pipeline(name="fstring-in-loop-in-exit-handler")
def fstring_in_exit_handler(xs: list = [1, 2]) -> None:  # type: ignore[type-arg]  # noqa: B006
    goodbye = echo(message="bye")
    with dsl.ExitHandler(goodbye), dsl.ParallelFor(xs) as item:
        echo(message=f"x {item}")


@dsl.pipeline(name="item-in-loop-in-exit-handler")
def item_in_exit_handler(xs: list = [1, 2]) -> None:  # type: ignore[type-arg]  # noqa: B006
    goodbye = echo(message="bye")
    with dsl.ExitHandler(goodbye), dsl.ParallelFor(xs) as item:
        echo(message=item)


@dsl.pipeline(name="task-output-loop-in-exit-handler")
def task_output_loop_in_exit_handler() -> None:
    goodbye = echo(message="bye")
    with dsl.ExitHandler(goodbye):
        items = make_items()
        with dsl.ParallelFor(items.output) as item:
            echo(message=item)


@dsl.pipeline(name="if-in-loop")
def if_in_loop(xs: list = [1, 2], flag: str = "a") -> None:  # type: ignore[type-arg]  # noqa: B006
    goodbye = echo(message="bye")
    with (
        dsl.ExitHandler(goodbye),
        dsl.ParallelFor(xs) as item,
        dsl.If(flag == "a"),
        dsl.ParallelFor(xs) as inner,
    ):
        echo(message=item)
        echo(message=inner)


@dsl.pipeline(name="fstring-in-loop-in-if")
def fstring_in_if(xs: list = [1, 2], flag: str = "a") -> None:  # type: ignore[type-arg]  # noqa: B006
    with dsl.If(flag == "a"), dsl.ParallelFor(xs) as item:
        echo(message=f"x {item}")


@dsl.pipeline(name="fstring-in-if-in-loop")
def fstring_in_if_in_loop(xs: list = [1, 2], flag: str = "a") -> None:  # type: ignore[type-arg]  # noqa: B006
    with dsl.ParallelFor(xs) as item, dsl.If(flag == "a"):
        echo(message=f"x {item}")


def _compiled(pipeline: Any, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    spec: dict[str, Any] = next(yaml.safe_load_all(path.read_text()))
    return spec


def test_fstring_of_the_item_inside_an_exit_handler_is_rejected(tmp_path: Path) -> None:
    spec = _compiled(fstring_in_exit_handler, tmp_path)
    # The shape as kfp 2.17.0 compiles it: the exit handler's group declares the loop item,
    # and root, which only has `xs`, is asked to feed it.
    group = spec["components"]["comp-exit-handler-1"]
    assert "pipelinechannel--xs-loop-item" in group["inputDefinitions"]["parameters"]
    feed = spec["root"]["dag"]["tasks"]["exit-handler-1"]["inputs"]["parameters"]
    assert feed["pipelinechannel--xs-loop-item"] == {"componentInputParameter": "xs-loop-item"}
    assert "xs-loop-item" not in spec["root"]["inputDefinitions"]["parameters"]

    with pytest.raises(ConfigError) as raised:
        check_pipeline_spec(spec)
    message = str(raised.value)
    assert "\n" not in message
    assert "comp-exit-handler-1" in message
    assert "pipelinechannel--xs-loop-item" in message
    assert FIX in message
    assert raised.value.exit_code == 2


def test_check_pipeline_compiles_and_rejects(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"comp-exit-handler-1 .* pipelinechannel--xs-loop-item"):
        check_pipeline(fstring_in_exit_handler)


@pytest.mark.parametrize(
    ("pipeline", "group"),
    [(fstring_in_if, "comp-condition-1"), (fstring_in_if_in_loop, "comp-condition-2")],
)
def test_fstring_of_the_item_around_an_if_is_rejected(
    pipeline: Any, group: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as raised:
        check_pipeline_spec(_compiled(pipeline, tmp_path))
    assert group in str(raised.value)
    assert "pipelinechannel--xs-loop-item" in str(raised.value)
    assert FIX in str(raised.value)


@pytest.mark.parametrize(
    "pipeline", [item_in_exit_handler, task_output_loop_in_exit_handler, if_in_loop]
)
def test_the_item_passed_straight_is_accepted(pipeline: Any, tmp_path: Path) -> None:
    spec = _compiled(pipeline, tmp_path)
    check_pipeline_spec(spec)
    check_pipeline(pipeline)


def test_if_inside_a_loop_legitimately_receives_the_item(tmp_path: Path) -> None:
    """A non-loop group may declare a loop item when an enclosing loop feeds it: not #12390."""
    spec = _compiled(if_in_loop, tmp_path)
    conditions = [name for name in spec["components"] if name.startswith("comp-condition-")]
    assert conditions
    declared = spec["components"][conditions[0]]["inputDefinitions"]["parameters"]
    assert "pipelinechannel--xs-loop-item" in declared
    check_pipeline_spec(spec)


def test_removing_the_feed_of_a_legitimate_item_is_caught(tmp_path: Path) -> None:
    """Guard: the acceptance above is earned. Cut the loop's feed to the If group and the
    same IR is rejected, naming that group."""
    spec = copy.deepcopy(_compiled(if_in_loop, tmp_path))
    feeds = [
        task["inputs"]["parameters"]
        for name, component in spec["components"].items()
        if name.startswith("comp-for-loop-")
        for task in component["dag"]["tasks"].values()
        if task["componentRef"]["name"].startswith("comp-condition-")
    ]
    assert len(feeds) == 1
    del feeds[0]["pipelinechannel--xs-loop-item"]
    with pytest.raises(ConfigError, match="comp-condition-"):
        check_pipeline_spec(spec)


def test_our_training_pipeline_is_accepted() -> None:
    from kfp_mlflow.pipelines.training import build_training_pipeline

    check_pipeline(build_training_pipeline())


def test_the_committed_training_ir_is_accepted() -> None:
    golden = Path(__file__).resolve().parents[2] / "pipelines" / "compiled" / "training.yaml"
    spec = next(yaml.safe_load_all(golden.read_text()))
    assert "comp-exit-handler-1" in spec["components"]  # the #12390 neighbourhood: loop in exit
    check_pipeline_spec(spec)
