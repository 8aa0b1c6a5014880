"""Every kustomization renders offline with the real kubectl, or is a pinned remote base."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.manifests.conftest import (
    LOCAL_KUSTOMIZATIONS,
    MANIFESTS,
    REMOTE_KUSTOMIZATIONS,
    Rendered,
    kustomization_dirs,
)

KFP_REF = "2.17.0"
_REMOTE = re.compile(r"^(https?://|github\.com/|git@|ssh://)")


def _entries(directory: str) -> list[str]:
    kustomization = yaml.safe_load((MANIFESTS / directory / "kustomization.yaml").read_text())
    return [*kustomization.get("resources", []), *kustomization.get("components", [])]


def test_every_kustomization_is_classified() -> None:
    assert sorted([*LOCAL_KUSTOMIZATIONS, *REMOTE_KUSTOMIZATIONS]) == kustomization_dirs()


@pytest.mark.parametrize("directory", LOCAL_KUSTOMIZATIONS)
def test_local_kustomization_renders_without_remote_bases(
    directory: str, rendered: dict[str, Rendered]
) -> None:
    assert not [entry for entry in _entries(directory) if _REMOTE.match(entry)]
    assert rendered[directory].objects, f"manifests/{directory} renders nothing"


@pytest.mark.parametrize("directory", REMOTE_KUSTOMIZATIONS)
def test_remote_bases_are_pinned(directory: str) -> None:
    remote = [entry for entry in _entries(directory) if _REMOTE.match(entry)]
    assert remote, f"manifests/{directory} is listed as remote but has no remote base"
    for entry in remote:
        if "github.com/kubeflow/pipelines" in entry:
            assert entry.endswith(f"?ref={KFP_REF}"), f"{entry} is not pinned to {KFP_REF}"
        else:  # a release asset URL: the version is in the path, never `latest`
            assert re.search(r"/v\d+\.\d+\.\d+/", entry), f"{entry} is not a pinned release"
        assert "latest" not in entry
    for entry in _entries(directory):
        if not _REMOTE.match(entry):
            assert (MANIFESTS / directory / entry).exists(), f"{directory}: {entry} missing"


def test_install_patch_targets_the_api_server() -> None:
    install = yaml.safe_load((MANIFESTS / "kfp/install/kustomization.yaml").read_text())
    for patch in install["patches"]:
        assert (MANIFESTS / "kfp/install" / patch["path"]).is_file()
    patch = yaml.safe_load(
        (MANIFESTS / "kfp/install/patches/ml-pipeline-mlflow-config.yaml").read_text()
    )
    spec = patch["spec"]["template"]["spec"]
    assert spec["containers"][0]["name"] == "ml-pipeline-api-server"
    assert spec["volumes"][0]["configMap"]["name"] == "ml-pipeline-api-server-config"
    assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/config/config.json"


def test_images_are_pinned(all_objects: list) -> None:
    images = [
        container["image"]
        for _, obj in all_objects
        if obj["kind"] in {"Deployment", "StatefulSet", "Job"}
        for container in obj["spec"]["template"]["spec"]["containers"]
    ]
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name, image
        assert tag not in {"", "latest"}, image
        assert "@" not in name, image


def test_kind_config_maps_the_node_ports(all_objects: list) -> None:
    config = yaml.safe_load((Path(MANIFESTS).parent / "kind-config.yaml").read_text())
    node = config["nodes"][0]
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", node["image"])
    mapped = {m["containerPort"]: m["hostPort"] for m in node["extraPortMappings"]}
    node_ports = {
        port["nodePort"]
        for _, obj in all_objects
        if obj["kind"] == "Service" and obj["spec"].get("type") == "NodePort"
        for port in obj["spec"]["ports"]
    }
    assert node_ports == set(mapped) == {30080, 30500}
    assert mapped == {30080: 8080, 30500: 5000}
