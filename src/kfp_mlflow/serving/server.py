"""Serving a registered version: MLflow's scoring server locally, a KServe manifest on a cluster.

Both start by resolving ``@alias`` (or a version) **once** to an immutable version: what is
served, and what a GitOps commit deploys, is that version even if ``@champion`` moves later.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kfp_mlflow.core.exceptions import ConfigError, TrackingError
from kfp_mlflow.core.net import free_port, is_healthy
from kfp_mlflow.core.settings import (
    Settings,
    child_environment,
    get_settings,
    mlflow_http_environment,
)
from kfp_mlflow.registry.promotion import CHAMPION

# The MLServer image KServe's `kserve-mlserver` ClusterServingRuntime runs (KServe v0.20.0
# config/runtimes/kustomization.yaml); `runtimeVersion` pins it instead of the runtime's default.
MLSERVER_VERSION = "1.7.1"
_READY_TIMEOUT_S = 120.0
# Schemes KServe's storage initializer downloads from.
_KSERVE_SCHEMES = ("s3", "gs", "https", "http", "pvc", "hdfs", "webhdfs", "oci")


@dataclass(frozen=True)
class ResolvedVersion:
    """One immutable registered version, and how it was asked for."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    source: str
    download_uri: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def describe(self) -> str:
        how = f"@{self.alias} → " if self.alias else ""
        return f"{self.uri} ({how}v{self.version}, run {self.run_id or 'none'})"


def resolve_version(
    name: str,
    *,
    alias: str | None = None,
    version: str | None = None,
    settings: Settings | None = None,
) -> ResolvedVersion:
    """The version ``alias`` (default ``@champion``) points at now, or ``version`` itself."""
    from kfp_mlflow.registry.versions import find_version
    from kfp_mlflow.tracking.runs import mlflow_errors, tracking_client

    if alias and version:
        raise ConfigError(
            f"--alias {alias} and --version {version} both given", hint="pass one of them"
        )
    if version is not None and not re.fullmatch(r"[1-9]\d*", version):
        raise ConfigError(f"--version: {version!r} is not a version number (1, 2, ...)")
    alias = None if version else (alias or CHAMPION)
    client = tracking_client(settings or get_settings())
    what = f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}"
    with mlflow_errors(f"resolve {what}"):
        found = find_version(client, name, alias=alias, version=None if alias else version)
        if found is None:
            raise ConfigError(
                f"--model-name {name}: {what} does not exist in the registry",
                hint="check the model name and the alias or version (the MLflow UI lists them)",
            )
        download_uri = client.get_model_version_download_uri(name, found.version)
    return ResolvedVersion(
        name=name,
        version=str(found.version),
        alias=alias,
        run_id=found.run_id,
        source=str(found.source),
        download_uri=str(download_uri),
    )


# ---------------------------------------------------------------------------------------------
# Real time, locally: `mlflow models serve`


def scoring_command(resolved: ResolvedVersion, port: int, host: str = "127.0.0.1") -> list[str]:
    """MLflow's own scoring server for exactly this version, in this Python environment."""
    return [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", resolved.uri,
        "--env-manager", "local",
        "--host", host,
        "-p", str(port),
    ]  # fmt: skip


class ScoringServer:
    """``mlflow models serve`` as a child process: started, waited for on /health, stopped."""

    def __init__(
        self,
        resolved: ResolvedVersion,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.resolved = resolved
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.settings = settings or get_settings()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def invocations_url(self) -> str:
        return f"{self.url}/invocations"

    def start(self) -> ScoringServer:
        environment = child_environment(
            {
                **mlflow_http_environment(self.settings),
                "MLFLOW_TRACKING_URI": self.settings.tracking_uri or "",
                "MLFLOW_REGISTRY_URI": self.settings.tracking_uri or "",
            }
        )
        output = self.log_path.open("ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(
                scoring_command(self.resolved, self.port, self.host),
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                stdin=subprocess.DEVNULL,
                # Its own process group: the server's workers are stopped with it.
                start_new_session=True,
                env=environment,
            )
        finally:
            if output:
                output.close()
        return self

    def wait_ready(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Block until /health answers; a clear error if the server exits or never answers."""
        assert self.process is not None, "start() first"
        where = f" (see {self.log_path})" if self.log_path else ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TrackingError(
                    f"the scoring server for {self.resolved.uri} exited with code "
                    f"{self.process.returncode} before answering{where}",
                    hint=f"is port {self.port} free, and can the model be downloaded?",
                )
            if is_healthy(self.url, timeout=1.0):
                return
            time.sleep(0.25)
        self.stop()
        raise TrackingError(
            f"the scoring server for {self.resolved.uri} did not answer on {self.url} "
            f"within {timeout:.0f}s{where}"
        )

    def wait(self) -> int:
        assert self.process is not None, "start() first"
        return self.process.wait()

    def stop(self) -> None:
        import signal

        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def __enter__(self) -> ScoringServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------
# Real time, on a cluster: a KServe InferenceService for GitOps


def storage_uri(resolved: ResolvedVersion, artifacts_destination: str | None) -> str:
    """Where KServe's storage initializer downloads the version from.

    A tracking server that proxies artifacts (``--serve-artifacts``, as on our cluster) reports
    ``mlflow-artifacts:/<path>``; the object behind it is ``<artifacts-destination>/<path>``.
    """
    location = resolved.download_uri
    parsed = urlparse(location)
    if parsed.scheme == "mlflow-artifacts":
        if not artifacts_destination:
            raise ConfigError(
                f"{resolved.uri} is stored at {location}, proxied by the tracking server",
                hint="pass --artifacts-destination, the server's own --artifacts-destination "
                "(s3://<bucket>/artifacts on our cluster)",
            )
        return f"{artifacts_destination.rstrip('/')}/{parsed.path.lstrip('/')}"
    if parsed.scheme in _KSERVE_SCHEMES:
        return location
    raise ConfigError(
        f"{resolved.uri} is stored at {location}, which a cluster cannot download",
        hint="use a tracking server whose artifact store is S3-compatible (s3://...)",
    )


def service_name(model_name: str) -> str:
    """A DNS-1123 label KServe accepts (it appends "-predictor-..." to it: kept short)."""
    label = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:40].rstrip("-")
    if not label or not label[0].isalpha():
        label = f"m-{label}".rstrip("-")
    return label


def inference_service(
    resolved: ResolvedVersion,
    uri: str,
    *,
    namespace: str | None = None,
    service_account: str = "kfp-mlflow-serving",
    runtime_version: str = MLSERVER_VERSION,
) -> dict[str, Any]:
    """A locked-down KServe InferenceService serving ``uri`` with MLServer (MLflow format, v2).

    The version appears only in ``storageUri``, so a promotion is a one-line change in Git.
    """
    metadata: dict[str, Any] = {
        "name": service_name(resolved.name),
        "labels": {"app.kubernetes.io/part-of": "kfp-mlflow"},
        "annotations": {"kfp-mlflow/registered-model": resolved.name},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {
            "predictor": {
                "minReplicas": 1,
                # Reads the artifact store's credentials (KServe's S3 secret annotations); the
                # pod itself never talks to the Kubernetes API.
                "serviceAccountName": service_account,
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 1000,
                    "runAsGroup": 1000,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                "model": {
                    "modelFormat": {"name": "mlflow"},
                    "protocolVersion": "v2",
                    "runtimeVersion": runtime_version,
                    "storageUri": uri,
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1Gi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                },
            }
        },
    }


def render_inference_service(obj: dict[str, Any], resolved: ResolvedVersion) -> str:
    """YAML with the resolved version named on the storageUri line itself, so the one line a
    promotion changes in Git also says which version it deploys."""
    import yaml

    text = yaml.safe_dump(obj, sort_keys=False)
    uri = obj["spec"]["predictor"]["model"]["storageUri"]
    how = f" (@{resolved.alias} when rendered)" if resolved.alias else ""
    lines = [
        f"{line}  # {resolved.uri}{how}" if line.strip() == f"storageUri: {uri}" else line
        for line in text.splitlines()
    ]
    header = (
        f"# Rendered by `kfp-mlflow render-serving --model-name {resolved.name}`. A promotion\n"
        "# re-renders it: only the storageUri line changes, and that line names the version.\n"
    )
    return header + "\n".join(lines) + "\n"


def write_inference_service(
    resolved: ResolvedVersion, output_dir: Path, **options: Any
) -> tuple[Path, str]:
    """Write ``<output_dir>/inferenceservice.yaml``; return its path and the storageUri."""
    artifacts_destination = options.pop("artifacts_destination", None)
    uri = storage_uri(resolved, artifacts_destination)
    obj = inference_service(resolved, uri, **options)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "inferenceservice.yaml"
    path.write_text(render_inference_service(obj, resolved))
    return path, uri
