"""Ctrl-C during a local run leaves no MLflow run RUNNING and no model version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient


@pytest.mark.parametrize(
    "whole_group",
    [True, False],
    ids=["ctrl-c-in-a-terminal", "interrupt-the-runner-only"],
)
def test_interrupted_run_ends_its_runs_as_killed(whole_group, mlflow_server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}
    env |= {
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_EXPERIMENT_NAME": f"interrupted-{whole_group}",
        "KFP_MLFLOW_MODEL_NAME": f"interrupted-model-{whole_group}",
    }
    # Its own process group, like a terminal's foreground job: Ctrl-C reaches the tasks too.
    process = subprocess.Popen(
        [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", "run"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    client = MlflowClient(mlflow_server)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name(env["MLFLOW_EXPERIMENT_NAME"])
        if experiment and client.search_runs(
            [experiment.experiment_id], filter_string="tags.`kfp_mlflow.step` = 'train'"
        ):
            break
        time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError("the pipeline never reached train")
    # A terminal's Ctrl-C reaches every task process too; a notebook's interrupt button only
    # the runner, while tasks keep going.
    if whole_group:
        os.killpg(process.pid, signal.SIGINT)
    else:
        os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted by SIGINT" in stderr
    assert "Traceback" not in stderr
    runs = client.search_runs([experiment.experiment_id])
    assert runs
    assert "RUNNING" not in {run.info.status for run in runs}
    killed = [run for run in runs if run.info.status == "KILLED"]
    assert killed
    # The message counts what really happened, whoever (runner or task) ended each run.
    assert f"{len(killed)} MLflow run(s) of this pipeline run marked KILLED" in stderr, stderr
    assert not client.search_registered_models(f"name = '{env['KFP_MLFLOW_MODEL_NAME']}'")
    parent = next(run for run in runs if run.data.tags["kfp_mlflow.role"] == "pipeline")
    assert parent.info.status == "KILLED"
    # kfp.local drains its queue after an interrupt; the tasks it still starts refuse to work
    # under a KILLED parent, so the pipeline never reaches register.
    steps = {run.data.tags.get("kfp_mlflow.step") for run in runs}
    assert "register" not in steps
