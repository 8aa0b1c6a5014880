"""The contract between kfp-mlflow and the installed kfp's component command (kfp_command.py).

KFP offers no supported way to choose a lightweight component's executor, so kfp-mlflow swaps
the launcher script KFP generates. These tests fail loudly when a kfp release generates anything
else, and pyproject.toml's kfp range holds the releases they pass on (run them in a throwaway
venv with another kfp before widening it).

No ``from __future__ import annotations`` here: kfp reads the sample component's annotations as
types, not strings.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kfp
import pytest
from kfp import dsl
from kfp.dsl import component_factory
from kfp.local import SubprocessRunner
from kfp.local.subprocess_task_handler import SubprocessTaskHandler

import kfp_mlflow
from kfp_mlflow.dsl.kfp_command import (
    KFP_ARGS,
    KFP_EXECUTOR,
    KFP_LAUNCHER,
    OUR_LAUNCHER,
    KfpCommandChangedError,
    reroute_executor,
)
from kfp_mlflow.runtime.executor import STEP_ARG, UNTRACKED_ARG


def double(x: int) -> int:
    return 2 * x


def _plain(**options: Any) -> Any:
    return dsl.component(double, base_image="python:3.11", install_kfp_package=False, **options)


def test_kfp_generates_the_launcher_the_adapter_knows():
    container = _plain().component_spec.implementation.container
    assert component_factory.EXECUTOR_MODULE == KFP_EXECUTOR
    assert container.command[:3] == ["sh", "-ec", KFP_LAUNCHER], f"kfp {kfp.__version__}"
    assert len(container.command) == 4  # ... and the component's source
    assert container.args == [*KFP_ARGS, "double"]


def test_a_tracked_component_runs_our_executor_with_kfps_arguments():
    for track in (True, False):
        container = kfp_mlflow.component(double, step="twice", track=track).component_spec
        command, args = (
            container.implementation.container.command,
            container.implementation.container.args,
        )
        assert command[:3] == ["sh", "-ec", OUR_LAUNCHER]
        assert args == [*KFP_ARGS, "double", STEP_ARG, "twice"] + ([] if track else [UNTRACKED_ARG])


def test_a_pip_install_prefix_is_kept_in_front():
    plain = _plain(packages_to_install=["requests"]).component_spec.implementation.container
    tracked = kfp_mlflow.component(double, packages_to_install=["requests"]).component_spec
    command = tracked.implementation.container.command
    assert command[:-4] == plain.command[:-4] and command[:2] == ["sh", "-c"]
    assert command[-4:-1] == ["sh", "-ec", OUR_LAUNCHER]


def test_kfp_local_still_takes_it_for_a_lightweight_python_component(tmp_path: Path):
    container = kfp_mlflow.component(double).component_spec.implementation.container
    # The constructor is kfp.local's whole check; it raises for container components.
    SubprocessTaskHandler(
        image="python:3.11",
        full_command=[*container.command, *container.args],
        pipeline_root=str(tmp_path),
        runner=SubprocessRunner(use_venv=False),
    )


def test_the_rerouted_command_runs_the_function(tmp_path: Path):
    """The launcher as a task container runs it: our executor loads the component's source with
    kfp's own loader and executes it with kfp's own executor (untracked: no MLflow needed)."""
    spec = kfp_mlflow.component(double, track=False).component_spec
    container = spec.implementation.container
    executor_output = tmp_path / "executor_output.json"
    executor_input = {
        "inputs": {"parameterValues": {"x": 21}},
        "outputs": {
            "parameters": {"Output": {"outputFile": str(tmp_path / "Output")}},
            "outputFile": str(executor_output),
        },
    }
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container.args]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("KFP_MLFLOW_STATUS_DIR", None)
    result = subprocess.run(
        [*container.command, *args], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(executor_output.read_text())["parameterValues"] == {"Output": 42}


def test_an_unknown_launcher_fails_loudly():
    spec = _plain().component_spec
    container = spec.implementation.container
    container.command = [*container.command[:2], KFP_LAUNCHER.replace("-m", "-X"), "source"]
    with pytest.raises(KfpCommandChangedError, match=r"kfp \d"):
        reroute_executor(spec, step="double", track=True)
    container.command = ["python3", "-m", KFP_EXECUTOR]  # a containerized component's command
    with pytest.raises(KfpCommandChangedError):
        reroute_executor(spec, step="double", track=True)
