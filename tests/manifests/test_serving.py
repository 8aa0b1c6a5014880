"""`render-serving`'s InferenceService: valid for KServe's published CRD, locked down like our
other workloads, pointing at one resolved version, and a promotion is a one-line Git diff.
The integration test (tests/integration/test_serving.py) renders it from a real registry."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.serving.server import (
    ResolvedVersion,
    inference_service,
    render_inference_service,
    storage_uri,
    write_inference_service,
)
from tests.manifests.conftest import SCHEMAS
from tests.manifests.test_policy import locked_down_problems

SCHEMA = SCHEMAS / "serving.kserve.io_inferenceservices.yaml"
DESTINATION = "s3://mlflow/artifacts"


def version(number: str, model_id: str) -> ResolvedVersion:
    return ResolvedVersion(
        name="kfp-mlflow-model",
        version=number,
        alias="champion",
        run_id="r" * 32,
        source=f"models:/{model_id}",
        download_uri=f"mlflow-artifacts:/1/models/{model_id}/artifacts",
    )


V1 = version("1", "m-0001")
V2 = version("2", "m-0002")


def rendered(resolved: ResolvedVersion) -> dict[str, Any]:
    return inference_service(resolved, storage_uri(resolved, DESTINATION))


def kserve_pod(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod KServe builds from a predictor: its pod fields, and the model as the container
    named kserve-container running the runtime's image at ``runtimeVersion`` (how the
    controller merges the ServingRuntime's container with the predictor's model spec)."""
    predictor = obj["spec"]["predictor"]
    model = predictor["model"]
    container = {
        key: value
        for key, value in model.items()
        if key not in {"modelFormat", "protocolVersion", "runtimeVersion", "storageUri"}
    }
    container["name"] = "kserve-container"
    container["image"] = f"docker.io/seldonio/mlserver:{model['runtimeVersion']}"
    pod = {key: value for key, value in predictor.items() if key != "model"}
    pod["containers"] = [container]
    return pod


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA.read_text())


def test_the_inference_service_matches_kserves_crd(schema: dict[str, Any]) -> None:
    obj = rendered(V1)
    jsonschema.validate(obj, schema)
    model = obj["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"}
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == f"{DESTINATION}/1/models/m-0001/artifacts"
    # The YAML written to Git is the same object (the comment is not part of it).
    assert yaml.safe_load(render_inference_service(obj, V1)) == obj


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "predictor", "model", "storageURI"), "s3://x"),  # a typo'd field
        (("spec", "predictor", "model", "modelFormat"), {"version": "2"}),  # name is required
        (("spec", "predictor", "minReplicas"), "one"),
    ],
)
def test_the_vendored_schema_rejects_a_broken_object(
    schema: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    """Guard: the trimmed schema really checks what we render."""
    obj = copy.deepcopy(rendered(V1))
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(obj, schema)


def test_the_predictor_pod_passes_the_security_posture_policy() -> None:
    obj = rendered(V1)
    assert locked_down_problems("InferenceService/kfp-mlflow-model", kserve_pod(obj)) == []


def test_the_policy_would_catch_a_writable_root() -> None:
    obj = copy.deepcopy(rendered(V1))
    obj["spec"]["predictor"]["model"]["securityContext"]["readOnlyRootFilesystem"] = False
    problems = locked_down_problems("isvc", kserve_pod(obj))
    assert problems == ["isvc/kserve-container: root filesystem is writable"]


def test_a_promotion_changes_one_line(tmp_path: Path) -> None:
    path, _ = write_inference_service(V1, tmp_path, artifacts_destination=DESTINATION)
    before = path.read_text().splitlines()
    write_inference_service(V2, tmp_path, artifacts_destination=DESTINATION)
    after = path.read_text().splitlines()
    changed = [
        line
        for line in difflib.unified_diff(before, after, lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert len(changed) == 2, changed  # one line out, one line in
    assert changed[0].startswith("-") and "storageUri:" in changed[0] and "m-0001" in changed[0]
    assert changed[1].startswith("+") and "m-0002" in changed[1]
    assert "# models:/kfp-mlflow-model/2" in changed[1]


def test_storage_uri_of_a_proxied_artifact_needs_the_destination() -> None:
    with pytest.raises(ConfigError, match="--artifacts-destination"):
        storage_uri(V1, None)
    direct = ResolvedVersion("m", "3", None, None, "s3://b/k", "s3://b/0/models/m-3/artifacts")
    assert storage_uri(direct, None) == "s3://b/0/models/m-3/artifacts"
    local = ResolvedVersion("m", "3", None, None, "/tmp/x", "/tmp/x/artifacts")
    with pytest.raises(ConfigError, match="cannot download"):
        storage_uri(local, None)
