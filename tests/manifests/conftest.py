"""Shared fixtures for the manifest tests: one kubectl, every local kustomization rendered once."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
KIND_CONFIG = ROOT / "kind-config.yaml"
SCHEMAS = Path(__file__).parent / "schemas"

# Read at import time: the autouse fixture in tests/conftest.py clears KFP_MLFLOW_* before
# each test runs. `KFP_MLFLOW_UPDATE_GOLDEN=1 pytest tests/manifests` rewrites the goldens.
UPDATE_GOLDEN = os.environ.get("KFP_MLFLOW_UPDATE_GOLDEN", "") not in ("", "0", "false")

# Kustomizations that pull remote bases (GitHub): checked for pins, never rendered here.
REMOTE_KUSTOMIZATIONS = ("cert-manager", "kfp/cluster-scoped", "kfp/install")
# Everything else renders offline, and is validated.
LOCAL_KUSTOMIZATIONS = (
    "kfp/local",
    "mlflow/base",
    "mlflow/overlays/kind",
    "pipelines/base",
    "gitops",
    "gitops/apps",
)


@dataclass(frozen=True)
class Rendered:
    """One kustomization's output: its directory and the objects it renders."""

    path: str
    objects: list[dict[str, Any]]


def kustomization_dirs() -> list[str]:
    """Every directory under manifests/ holding a kustomization.yaml, relative to manifests/."""
    return sorted(
        str(path.parent.relative_to(MANIFESTS)) for path in MANIFESTS.rglob("kustomization.yaml")
    )


@pytest.fixture(scope="session")
def kubectl() -> Path:
    from kfp_mlflow.cluster import kubectl_path

    return kubectl_path()


@pytest.fixture(scope="session")
def rendered(kubectl: Path) -> dict[str, Rendered]:
    """``kubectl kustomize`` of each local kustomization (started in parallel: ~0.2 s each)."""
    processes = {
        name: subprocess.Popen(
            [str(kubectl), "kustomize", str(MANIFESTS / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in LOCAL_KUSTOMIZATIONS
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, f"kubectl kustomize manifests/{name} failed:\n{stderr}"
        objects = [doc for doc in yaml.safe_load_all(stdout) if doc]
        results[name] = Rendered(path=name, objects=objects)
    return results


@pytest.fixture(scope="session")
def all_objects(rendered: dict[str, Rendered]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, obj) for name, result in rendered.items() for obj in result.objects]


# What `make deploy` applies on kind (besides the remote bases): each object exactly once.
DEPLOYED = ("kfp/local", "mlflow/overlays/kind", "pipelines/base")


@pytest.fixture(scope="session")
def deployed(rendered: dict[str, Rendered]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, obj) for name in DEPLOYED for obj in rendered[name].objects]


@pytest.fixture(scope="session")
def kubernetes_version() -> str:
    """The Kubernetes version of the kind node image, e.g. ``1.33.1``."""
    config = yaml.safe_load(KIND_CONFIG.read_text())
    image = config["nodes"][0]["image"]
    tag = image.split(":", 1)[1].split("@", 1)[0]
    return tag.removeprefix("v")


def workloads(objects: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
    return [(name, obj) for name, obj in objects if obj.get("kind") in kinds]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]
