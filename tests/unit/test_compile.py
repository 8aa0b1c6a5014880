"""The compiled pipeline: strict KFP IR, pinned image, no local paths or secrets, golden file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kfp_mlflow.core.settings import Settings
from kfp_mlflow.dsl.compiling import compile_pipeline
from tests.support.golden import same_ir

# The committed golden file; `make golden` rewrites it.
GOLDEN_PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "compiled" / "training.yaml"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = compile_pipeline(tmp_path_factory.mktemp("c") / "training.yaml", Settings())
    return path.read_text()


def test_parses_strictly_into_pipeline_spec(compiled):
    documents = list(yaml.safe_load_all(compiled))
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "kfp-mlflow-training"
    tasks = spec.root.dag.tasks
    assert "exit-handler-1" in tasks and "finalize" in tasks
    assert tasks["finalize"].trigger_policy.strategy == (
        pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED
    )
    if len(documents) > 1:  # kfp-kubernetes settings, when the platform helper adds any
        json_format.ParseDict(documents[1], pipeline_spec_pb2.PlatformSpec())


def test_components_are_the_four_steps_and_the_exit_handler(compiled):
    spec = yaml.safe_load_all(compiled).__next__()
    executors = spec["deploymentSpec"]["executors"]
    names = {name.removeprefix("exec-") for name in executors}
    assert names == {"preprocess", "train", "evaluate", "register", "finalize"}
    for executor in executors.values():
        image = executor["container"]["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), image
        assert not image.endswith(":latest")


def test_artifacts_pass_by_path(compiled):
    spec = next(yaml.safe_load_all(compiled))
    train = spec["components"]["comp-train"]["inputDefinitions"]
    assert train["artifacts"]["train_data"]["artifactType"]["schemaTitle"] == "system.Dataset"
    outputs = spec["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]
    assert outputs["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert outputs["classification_metrics"]["artifactType"]["schemaTitle"] == (
        "system.ClassificationMetrics"
    )
    assert outputs["evaluation"]["artifactType"]["schemaTitle"] == "system.Artifact"
    register = spec["components"]["comp-register"]["inputDefinitions"]["artifacts"]
    assert register["evaluations"]["isArtifactList"] is True


def test_parameters_are_small_and_hold_no_server_or_credentials(compiled):
    spec = next(yaml.safe_load_all(compiled))
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {
        "data", "target", "task", "model_name", "candidates", "primary_metric",
        "thresholds", "min_improvement", "on_schema_change", "seed", "test_size", "min_rows",
    }  # fmt: skip
    defaults = yaml.safe_dump({k: v.get("defaultValue") for k, v in parameters.items()})
    assert len(defaults.encode()) < 10_000  # KFP's limit for all run parameters together
    assert not {"tracking_uri", "password", "token", "mlflow_tracking_uri"} & set(parameters)
    # Server addresses reach steps from the environment (a ConfigMap on the cluster), never
    # from the compiled file.
    for forbidden in ("http://", "https://", "127.0.0.1", "localhost"):
        assert forbidden not in compiled, forbidden


def test_holds_no_local_paths(compiled):
    for prefix in ("/work/", "/tmp/", "/root/", "/home/", os.getcwd()):
        assert prefix not in compiled, prefix


def test_golden_file_is_current(compiled):
    if os.environ.get("KFP_MLFLOW_UPDATE_GOLDEN"):
        GOLDEN_PIPELINE.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN_PIPELINE.write_text(compiled)
    assert GOLDEN_PIPELINE.is_file(), "run `make golden` to write the compiled pipeline"
    assert same_ir(GOLDEN_PIPELINE.read_text(), compiled), "stale golden file: run `make golden`"


def test_compiled_text_is_the_same_in_every_process(tmp_path):
    """Struct defaults in kfp's header comment follow the hash seed; ours are sorted."""
    import subprocess
    import sys

    outputs = []
    for seed in ("1", "2"):
        target = tmp_path / f"{seed}.yaml"
        code = (
            "from pathlib import Path; from kfp_mlflow.dsl.compiling import compile_pipeline;"
            "from kfp_mlflow.core.settings import Settings;"
            f"compile_pipeline(Path({str(target)!r}), Settings())"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}
        subprocess.run(
            [sys.executable, "-c", code], check=True, env={**env, "PYTHONHASHSEED": seed}
        )
        outputs.append(target.read_text())
    assert outputs[0] == outputs[1]
