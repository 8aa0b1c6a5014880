"""Security posture of every workload we write, and no secret value outside a Secret."""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import pytest
import yaml

from tests.manifests.conftest import MANIFESTS, pod_spec, workloads


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_workload_is_locked_down(all_objects: list) -> None:
    found = workloads(all_objects)
    assert {obj["kind"] for _, obj in found} >= {"Deployment", "StatefulSet", "Job"}
    problems = []
    for source, obj in found:
        where = f"{source}: {obj['kind']}/{obj['metadata']['name']}"
        problems += locked_down_problems(where, pod_spec(obj))
    assert not problems, "\n".join(problems)


def locked_down_problems(where: str, spec: dict[str, Any]) -> list[str]:
    """What makes the pod ``spec`` fall short of our posture (also used for KServe predictors)."""
    problems = []
    pod_security = spec.get("securityContext", {})
    if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: mounts a service-account token it does not need")
    writable = {
        mount["mountPath"]
        for container in _containers(spec)
        for mount in container.get("volumeMounts", [])
    }
    for container in _containers(spec):
        security = {**pod_security, **container.get("securityContext", {})}
        name = f"{where}/{container['name']}"
        if security.get("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if security.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities not dropped")
        limits = container.get("resources", {}).get("limits", {})
        requests = container.get("resources", {}).get("requests", {})
        if not {"cpu", "memory"} <= limits.keys() or not {"cpu", "memory"} <= requests.keys():
            problems.append(f"{name}: cpu/memory requests and limits missing")
        if container["image"].endswith(":latest") or ":" not in container["image"]:
            problems.append(f"{name}: image not pinned")
        for env in container.get("env", []):
            if "value" in env and any(
                word in env["name"].upper() for word in ("PASSWORD", "SECRET", "TOKEN")
            ):
                problems.append(f"{name}: {env['name']} set inline, not from a Secret")
    if "/tmp" not in writable:
        problems.append(f"{where}: no writable /tmp (emptyDir) under a read-only root")
    return problems


def test_long_running_workloads_have_probes(all_objects: list) -> None:
    for _, obj in workloads(all_objects):
        if obj["kind"] in {"Job", "CronJob"}:
            continue
        for container in pod_spec(obj)["containers"]:
            assert "readinessProbe" in container, container["name"]
            assert "livenessProbe" in container, container["name"]
    mlflow = next(
        obj
        for _, obj in all_objects
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "mlflow"
    )
    probe = pod_spec(mlflow)["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/health"


def _secret_values(all_objects: list) -> set[str]:
    values = set()
    for _, obj in all_objects:
        if obj["kind"] != "Secret":
            continue
        values.update(obj.get("stringData", {}).values())
        values.update(base64.b64decode(v).decode() for v in obj.get("data", {}).values())
    # Too-short values (e.g. a user name like "mlflow") would match everywhere by accident.
    return {value for value in values if len(value) >= 8}


def test_secret_values_appear_only_in_secrets(all_objects: list) -> None:
    secrets = _secret_values(all_objects)
    assert secrets, "the kind overlay should render its dev Secrets"
    for source, obj in all_objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        leaked = [value for value in secrets if value in text]
        assert not leaked, f"{source}: {obj['kind']}/{obj['metadata']['name']} holds a secret"


@pytest.mark.parametrize("words", [("password", "secretkey", "token")])
def test_compiled_pipeline_holds_secret_names_only(words: tuple[str, ...]) -> None:
    version = yaml.safe_load((MANIFESTS / "pipelines/base/pipeline-version.yaml").read_text())
    platform = version["spec"]["platformSpec"]["platforms"]["kubernetes"]
    for executor in platform["deploymentSpec"]["executors"].values():
        for secret in executor.get("secretAsEnv", []):
            assert set(secret) <= {"secretName", "secretNameParameter", "keyToEnv", "optional"}
    text = yaml.safe_dump(version["spec"]["pipelineSpec"]).lower()
    assert not any(f"{word}:" in text for word in words)


def test_no_database_password_is_in_git(all_objects: list) -> None:
    """The kind database password is made in the cluster: no manifest renders it, none sets it."""
    tracked = subprocess.run(
        ["git", "ls-files", "manifests"],
        cwd=MANIFESTS.parent, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert tracked and not [
        path for path in tracked if path.endswith(".env") and "postgres" in path
    ]
    rendered_secrets = {
        obj["metadata"]["name"] for _, obj in all_objects if obj["kind"] == "Secret"
    }
    assert "mlflow-postgres" not in rendered_secrets
    for source, obj in workloads(all_objects):
        for container in _containers(pod_spec(obj)):
            for env in container.get("env", []):
                if env["name"] == "POSTGRES_PASSWORD":
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == "mlflow-postgres", f"{source}: {obj['metadata']['name']}"


def _token_holders(objects: list) -> dict[str, str]:
    """Workloads that get a Kubernetes API token, by `<kind>/<name>` → service account."""
    holders = {}
    for _, obj in workloads(objects):
        spec = pod_spec(obj)
        projected = [
            source
            for volume in spec.get("volumes", [])
            for source in volume.get("projected", {}).get("sources", [])
        ]
        if spec.get("automountServiceAccountToken") is not False or any(
            "serviceAccountToken" in source for source in projected
        ):
            holders[f"{obj['kind']}/{obj['metadata']['name']}"] = spec["serviceAccountName"]
    return holders


def test_only_the_secret_job_holds_an_api_token_with_a_minimal_role(all_objects: list) -> None:
    holders = _token_holders(all_objects)
    assert holders == {"Job/mlflow-postgres-secret": "mlflow-postgres-secret"}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for _, obj in all_objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    assert "ClusterRoleBinding" not in by_kind and "ClusterRole" not in by_kind
    bindings = [
        binding
        for binding in by_kind.get("RoleBinding", [])
        if any(subject["name"] == "mlflow-postgres-secret" for subject in binding["subjects"])
    ]
    assert len(bindings) == 1
    assert bindings[0]["subjects"] == [
        {"kind": "ServiceAccount", "name": "mlflow-postgres-secret", "namespace": "mlflow"}
    ]
    role_name = bindings[0]["roleRef"]["name"]
    (role,) = [role for role in by_kind["Role"] if role["metadata"]["name"] == role_name]
    assert role["metadata"]["namespace"] == "mlflow"
    # get: that one Secret; create: secrets (RBAC cannot scope create by name). Nothing else.
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["mlflow-postgres"],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
