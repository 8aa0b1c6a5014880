"""The training pipeline with every task in the component image (kfp.local's DockerRunner).

A real Docker engine, the image built by .ci/build-image, a real MLflow server on 127.0.0.1:
the tasks reach it through host networking and write their artifacts into the pipeline root,
which is bind-mounted at the same path and must be writable by the image's non-root user.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from kfp_mlflow.settings import get_settings
from tests.integration.conftest import client, tracked_environment
from tests.support.docker import IMAGE_UID, BuiltImage

pytestmark = pytest.mark.docker


def writable_pipeline_root(path: Path) -> tuple[Path, dict[str, str], int]:
    """A pipeline root the tasks can write (kfp.local mounts it into every task at its own
    path), the ``containers.run`` arguments that go with it, and the uid that will own outputs.

    As root: hand the directory to the image's non-root user. As anyone else: run the tasks as
    that user (still not root), so the files stay theirs to read and delete.
    """
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, IMAGE_UID, 0)
        return path, {}, IMAGE_UID
    return path, {"user": f"{os.getuid()}:0"}, os.getuid()


@pytest.fixture(scope="module")
def docker_run(mlflow_server, component_image: BuiltImage, tmp_path_factory):
    from kfp import local
    from kfp_mlflow.pipelines.training import build_training_pipeline

    work = tmp_path_factory.mktemp("docker-runner")
    root, run_args, owner = writable_pipeline_root(work / "root")
    with tracked_environment(mlflow_server, work) as names:
        settings = get_settings()
        assert settings.image == component_image.reference
        environment = {
            "MLFLOW_TRACKING_URI": names["MLFLOW_TRACKING_URI"],
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "KFP_MLFLOW_RUNNER": "local",
            # What the image really is: a tag can move, the id cannot (see runner wiring notes).
            "KFP_MLFLOW_IMAGE_DIGEST": component_image.image_id,
            "OMP_NUM_THREADS": "1",
        }
        local.init(
            runner=local.DockerRunner(network_mode="host", environment=environment, **run_args),
            pipeline_root=str(root),
            raise_on_error=False,
        )
        pipeline = build_training_pipeline(settings)
        started = time.perf_counter()
        pipeline()
        seconds = time.perf_counter() - started
        print(f"training pipeline in containers: {seconds:.1f}s")
        yield root, names, client(), owner


def _runs(mlflow, names):
    experiment = mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"])
    runs = mlflow.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("kfp_mlflow.role") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("kfp_mlflow.role") == "task"]
    return parents, children


def test_every_task_ran_in_the_image_and_was_tracked(docker_run, component_image):
    root, names, mlflow, owner = docker_run
    parents, children = _runs(mlflow, names)
    assert len(parents) == 1
    assert parents[0].info.status == "FINISHED"
    steps = sorted(c.data.tags["kfp_mlflow.step"] for c in children)
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
        assert child.data.tags["kfp_mlflow.runner"] == "local"
        if baked:
            assert child.data.tags["mlflow.source.git.commit"] == baked
    # Outputs were written inside the containers, as the non-root task user, into the mount.
    decision_file = next(root.glob("*/register/decision"))
    assert decision_file.stat().st_uid == owner != 0


def test_registers_a_version_and_promotes_it(docker_run):
    root, names, mlflow, _ = docker_run
    decision = json.loads(next(root.glob("*/register/decision")).read_text())
    assert decision["promoted"] is True
    assert decision["registered_version"] == decision["champion_version"] == "1"
    versions = mlflow.search_model_versions(f"name = '{names['KFP_MLFLOW_MODEL_NAME']}'")
    assert [v.version for v in versions] == ["1"]
    champion = mlflow.get_model_version_by_alias(names["KFP_MLFLOW_MODEL_NAME"], "champion")
    assert champion.version == "1"


def test_champion_from_containers_predicts_here(docker_run, monkeypatch):
    import mlflow.pyfunc

    root, names, _, _ = docker_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", names["MLFLOW_TRACKING_URI"])
    model = mlflow.pyfunc.load_model(f"models:/{names['KFP_MLFLOW_MODEL_NAME']}@champion")
    test_split = next(root.glob("*/preprocess/test_data"))
    rows = pd.read_parquet(test_split).drop(columns=["disease_progression"]).head(5)
    assert len(model.predict(rows)) == 5
