"""The training pipeline with every task in the component image (kfp.local's DockerRunner).

A real Docker engine, the image built by .ci/build-image, a real MLflow server on 127.0.0.1:
the tasks reach it through host networking and write their artifacts into the pipeline root,
which is bind-mounted at the same path and must be writable by the image's non-root user.
"""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import IMAGE_UID, run_local
from tests.integration.conftest import client, tracked_environment
from tests.support.docker import BuiltImage

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker_run(mlflow_server, component_image: BuiltImage, tmp_path_factory):
    """`kfp-mlflow run --runner docker`'s Python counterpart, against a real MLflow server."""
    work = tmp_path_factory.mktemp("docker-runner")
    with tracked_environment(mlflow_server, work) as names:
        settings = get_settings()
        assert settings.image == component_image.reference
        started = time.perf_counter()
        result = run_local(None, {}, settings, runner="docker")
        print(f"training pipeline in containers: {time.perf_counter() - started:.1f}s")
        assert result.succeeded, result.error
        owner = IMAGE_UID if os.getuid() == 0 else os.getuid()
        yield result.run_dir, names, client(), owner, result


def _runs(mlflow, names):
    experiment = mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"])
    runs = mlflow.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("kfp_mlflow.role") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("kfp_mlflow.role") == "task"]
    return parents, children


def test_every_task_ran_in_the_image_and_was_tracked(docker_run, component_image):
    root, names, mlflow, owner, _ = docker_run
    parents, children = _runs(mlflow, names)
    assert len(parents) == 1
    assert parents[0].info.status == "FINISHED"
    steps = sorted(c.data.tags["kfp_mlflow.step"] for c in children)
    # The runner learned every task's outcome from the records the containers wrote.
    assert {t.state for t in docker_run[4].tasks} == {"SUCCEEDED"}
    assert steps == ["evaluate"] * 4 + ["preprocess", "register"] + ["train"] * 4
    # The interpreter each task recorded is the image's (Debian's python3), not this process's.
    image_python = component_image.run(
        "python", "-c", "import platform; print(platform.python_version())"
    )
    image_commit = json.loads(component_image.inspect("{{json .Config.Env}}"))
    baked = dict(item.split("=", 1) for item in image_commit).get("KFP_MLFLOW_GIT_COMMIT")
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["kfp_mlflow.version.python"] == image_python.strip()
        # The runner's environment reached the task (the settings' default runner is "cluster").
        assert child.data.tags["kfp_mlflow.runner"] == "docker"
        assert child.data.tags["kfp_mlflow.image"] == component_image.reference
        assert child.data.tags["kfp_mlflow.image_digest"] == component_image.image_id
        assert len(child.data.tags["kfp_mlflow.lock_sha256"]) == 64  # baked into the image
        if baked:
            assert child.data.tags["mlflow.source.git.commit"] == baked
    # Outputs were written inside the containers, as the non-root task user, into the mount.
    decision_file = next(root.glob("*/register/decision"))
    assert decision_file.stat().st_uid == owner != 0


def test_registers_a_version_and_promotes_it(docker_run):
    root, names, mlflow, _, _ = docker_run
    decision = json.loads(next(root.glob("*/register/decision")).read_text())
    assert decision["promoted"] is True
    assert decision["registered_version"] == decision["champion_version"] == "1"
    versions = mlflow.search_model_versions(f"name = '{names['KFP_MLFLOW_MODEL_NAME']}'")
    assert [v.version for v in versions] == ["1"]
    champion = mlflow.get_model_version_by_alias(names["KFP_MLFLOW_MODEL_NAME"], "champion")
    assert champion.version == "1"


def test_champion_from_containers_predicts_here(docker_run, monkeypatch):
    import mlflow.pyfunc

    root, names, _, _, _ = docker_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", names["MLFLOW_TRACKING_URI"])
    model = mlflow.pyfunc.load_model(f"models:/{names['KFP_MLFLOW_MODEL_NAME']}@champion")
    test_split = next(root.glob("*/preprocess/test_data"))
    rows = pd.read_parquet(test_split).drop(columns=["disease_progression"]).head(5)
    assert len(model.predict(rows)) == 5


def test_same_decision_as_the_subprocess_runner(docker_run, mlflow_server, tmp_path):
    """Same code, same data, same seeds: the containers decide as this process's runner does."""
    _, _, _, _, in_containers = docker_run
    with tracked_environment(mlflow_server, tmp_path / "work"):
        here = run_local(None, {}, get_settings())
    assert here.succeeded, here.error
    ours, theirs = here.decision, in_containers.decision
    assert [c["candidate"] for c in ours.candidates] == [c["candidate"] for c in theirs.candidates]
    assert ours.winner == theirs.winner
    for mine, other in zip(ours.candidates, theirs.candidates, strict=True):
        assert mine["metrics"] == pytest.approx(other["metrics"], rel=1e-6)
