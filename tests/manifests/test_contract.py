"""No drift between what the pipeline expects (src/kfp_mlflow/dsl/platform.py, the compiled platform
spec) and what the manifests provide."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from kfp_mlflow.dsl import platform

from kfp_mlflow.core.settings import Settings
from tests.manifests.conftest import MANIFESTS


def _find(deployed: list, kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` named ``name`` (or ``name-<hash>``, a generated ConfigMap)."""
    hashed = re.compile(rf"{re.escape(name)}-[a-z0-9]{{10}}")
    matches = [
        o
        for _, o in deployed
        if o["kind"] == kind
        and (o["metadata"]["name"] == name or hashed.fullmatch(o["metadata"]["name"]))
    ]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _executors() -> dict[str, Any]:
    version = yaml.safe_load((MANIFESTS / "pipelines/base/pipeline-version.yaml").read_text())
    platforms = version["spec"]["platformSpec"]["platforms"]
    return platforms["kubernetes"]["deploymentSpec"]["executors"]


def test_every_task_gets_the_platform_settings() -> None:
    executors = _executors()
    assert len(executors) >= 5
    for name, executor in executors.items():
        config_maps = executor["configMapAsEnv"]
        assert [c["configMapName"] for c in config_maps] == [platform.CONFIG_MAP_NAME], name
        assert {k["envVar"] for k in config_maps[0]["keyToEnv"]} == set(platform.CONFIG_ENV)
        secrets = {s["secretName"]: s for s in executor["secretAsEnv"]}
        assert set(secrets) == {
            platform.CREDENTIALS_SECRET_NAME,
            platform.OBJECT_STORE_SECRET_NAME,
        }
        # Optional: a cluster without MLflow auth (no credentials Secret) still runs.
        assert all(secret.get("optional") for secret in secrets.values())
        assert executor["imagePullPolicy"] == platform.IMAGE_PULL_POLICY


def test_config_map_provides_exactly_the_expected_keys(deployed: list) -> None:
    config = _find(deployed, "ConfigMap", platform.CONFIG_MAP_NAME)
    pipeline = _find(deployed, "PipelineVersion", _version_name(deployed))
    assert config["metadata"]["namespace"] == pipeline["metadata"]["namespace"] == "kubeflow"
    assert set(config["data"]) == set(platform.CONFIG_ENV)
    assert config["data"]["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow:5000"


def test_env_names_are_ones_settings_reads() -> None:
    aliases = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        aliases.update(getattr(alias, "choices", []) or ([alias] if alias else []))
    readable = {str(a) for a in aliases} | {
        f"KFP_MLFLOW_{name.upper()}" for name in Settings.model_fields
    }
    expected = {*platform.CONFIG_ENV, *platform.CREDENTIALS_SECRET_ENV.values()}
    expected |= set(platform.OBJECT_STORE_SECRET_ENV.values())
    assert expected <= readable, expected - readable


def test_tracking_uri_points_at_the_mlflow_service(deployed: list) -> None:
    service = _find(deployed, "Service", "mlflow")
    config = _find(deployed, "ConfigMap", platform.CONFIG_MAP_NAME)
    host = f"http://{service['metadata']['name']}.{service['metadata']['namespace']}:"
    port = service["spec"]["ports"][0]["port"]
    assert config["data"]["MLFLOW_TRACKING_URI"] == f"{host}{port}"


def test_kfp_plugin_agrees_with_the_config_map(deployed: list) -> None:
    api_config = _find(deployed, "ConfigMap", "ml-pipeline-api-server-config")
    plugin = json.loads(api_config["data"]["config.json"])["plugins"]["mlflow"]
    config = _find(deployed, "ConfigMap", platform.CONFIG_MAP_NAME)["data"]
    # MLflow raises when MLFLOW_EXPERIMENT_NAME and the injected MLFLOW_EXPERIMENT_ID disagree.
    assert plugin["settings"]["defaultExperimentName"] == config["MLFLOW_EXPERIMENT_NAME"]
    assert plugin["settings"]["injectUserEnvVars"] is True
    assert plugin["settings"]["authType"] == "none"
    assert plugin["endpoint"].startswith("http://mlflow.mlflow.svc.cluster.local:5000")
    allowed = _find(deployed, "ConfigMap", "mlflow-server-config")["data"][
        "MLFLOW_SERVER_ALLOWED_HOSTS"
    ].split(",")
    assert "mlflow.mlflow.svc.cluster.local:5000" in allowed
    assert "mlflow.mlflow:5000" in allowed


def _secrets_created_in_cluster(deployed: list) -> dict[tuple[str, str], set[str]]:
    """Secrets a rendered Job creates at run time (kind: the database password), with the keys
    its script writes: (namespace, name) → keys."""
    job = _find(deployed, "Job", "mlflow-postgres-secret")
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = container["command"][-1]
    stringdata = script[script.index('"stringData"') :]
    keys = set(re.findall(r'"([A-Z_]+)":', stringdata))
    return {(job["metadata"]["namespace"], container["args"][0]): keys}


def test_secrets_the_workloads_read_are_rendered_or_created(deployed: list) -> None:
    provided = {
        (o["metadata"].get("namespace"), o["metadata"]["name"]): {
            *o.get("data", {}),
            *o.get("stringData", {}),
        }
        for _, o in deployed
        if o["kind"] == "Secret"
    }
    created = _secrets_created_in_cluster(deployed)
    assert created == {
        ("mlflow", "mlflow-postgres"): {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    }
    assert not set(created) & set(provided), "a Secret both rendered and created at run time"
    provided |= created
    checked = 0
    for _, obj in deployed:
        if obj["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        namespace = obj["metadata"].get("namespace")
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert (namespace, ref["name"]) in provided, ref
                    assert ref["key"] in provided[(namespace, ref["name"])], ref
                    checked += 1
    assert checked >= 8


def test_network_policies_admit_pipeline_pods(deployed: list) -> None:
    policy = _find(deployed, "NetworkPolicy", "mlflow-from-kfp")
    peers = policy["spec"]["ingress"][0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}},
        "podSelector": {"matchLabels": {"pipelines.kubeflow.org/v2_component": "true"}},
    } in peers
    postgres = _find(deployed, "NetworkPolicy", "postgres-from-mlflow")
    assert postgres["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}}
    ]


def _version_name(deployed: list) -> str:
    return next(o for _, o in deployed if o["kind"] == "PipelineVersion")["metadata"]["name"]
