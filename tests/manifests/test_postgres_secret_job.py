"""The kind overlay's secret Job, run for real: its script exactly as rendered, under this
Python, against a stand-in Kubernetes API on 127.0.0.1.

No Kubernetes API server can run here (DESIGN.md §3b), so the stand-in is a fake that holds the
real contract instead: the REST paths of core/v1 Secrets, bearer-token auth, TLS verified
against the mounted CA, the status codes a server answers (200/404 on get, 201/409 on create,
403 without RBAC), and every created Secret validated strictly against the Kubernetes schema of
the kind node's version.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.manifests.conftest import Rendered, pod_spec

TOKEN = "test-token-of-the-job-pod"
NAMESPACE = "mlflow"
SECRETS_PATH = f"/api/v1/namespaces/{NAMESPACE}/secrets"


@dataclass
class FakeApi:
    """What the stand-in API server holds and saw."""

    kubernetes_version: str
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    forbid: bool = False
    lose_race: bool = False  # another writer creates the Secret between our get and create


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def _reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str) -> None:
            self._reply(
                code, {"kind": "Status", "apiVersion": "v1", "code": code, "reason": reason}
            )

        def _authorised(self) -> bool:
            api.requests.append((self.command, self.path))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._status(401, "Unauthorized")
                return False
            if api.forbid:
                self._status(403, "Forbidden")
                return False
            return True

        def do_GET(self) -> None:
            if not self._authorised():
                return
            prefix = f"{SECRETS_PATH}/"
            name = self.path.removeprefix(prefix)
            if not self.path.startswith(prefix) or "/" in name:
                self._status(404, "NotFound")
            elif name in api.secrets:
                self._reply(200, api.secrets[name])
            else:
                self._status(404, "NotFound")

        def do_POST(self) -> None:
            if not self._authorised():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path != SECRETS_PATH or self.headers.get("Content-Type") != "application/json":
                self._status(400, "BadRequest")
                return
            try:
                kubernetes_validate.validate(body, api.kubernetes_version, strict=True)
            except kubernetes_validate.ValidationError as error:
                self._status(422, f"Invalid: {error}")
                return
            name = body["metadata"]["name"]
            if api.lose_race:
                api.secrets[name] = {"stringData": {"POSTGRES_PASSWORD": "the-winner's"}}
            if name in api.secrets:
                self._status(409, "AlreadyExists")
                return
            api.secrets[name] = body
            self._reply(201, body)

    return Handler


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "ca.crt", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,digitalSignature,keyEncipherment"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def api(tls_files: tuple[Path, Path], kubernetes_version: str) -> Iterator[tuple[FakeApi, int]]:
    state = FakeApi(kubernetes_version=kubernetes_version)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def run_job(
    rendered: dict[str, Rendered],
    api: tuple[FakeApi, int],
    tls_files: tuple[Path, Path],
    tmp_path: Path,
) -> Any:
    """Run the Job's container command + args as the kubelet would, with its env and mounts."""
    (job,) = [
        obj
        for obj in rendered["mlflow/overlays/kind"].objects
        if obj["kind"] == "Job" and obj["metadata"]["name"] == "mlflow-postgres-secret"
    ]
    (container,) = pod_spec(job)["containers"]
    credentials = tmp_path / "serviceaccount"
    credentials.mkdir()
    (credentials / "token").write_text(TOKEN)
    (credentials / "ca.crt").write_bytes(tls_files[0].read_bytes())
    (credentials / "namespace").write_text(NAMESPACE)
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["API_CREDENTIALS_DIR"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    env["API_CREDENTIALS_DIR"] = str(credentials)  # where the projected volume would be
    env |= {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(api[1]),
        "PATH": os.environ.get("PATH", ""),
    }
    command = [*container["command"], *container["args"]]
    assert command[0] == "python"

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *command[1:]],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    return run


def test_creates_the_secret_with_a_random_password(run_job: Any, api: tuple[FakeApi, int]) -> None:
    state, _ = api
    result = run_job()
    assert result.returncode == 0, result.stderr
    secret = state.secrets["mlflow-postgres"]
    data = secret["stringData"]
    assert data["POSTGRES_USER"] == data["POSTGRES_DB"] == "mlflow"
    password = data["POSTGRES_PASSWORD"]
    assert len(password) >= 32
    assert password.replace("-", "").replace("_", "").isalnum()  # safe inside the database URI
    assert password not in result.stdout + result.stderr
    assert "created" in result.stdout
    # No Argo CD tracking metadata: Argo CD must neither prune nor overwrite it.
    assert not any("argocd" in key for key in secret["metadata"].get("labels", {}))
    assert "annotations" not in secret["metadata"]
    assert state.requests == [
        ("GET", f"{SECRETS_PATH}/mlflow-postgres"),
        ("POST", SECRETS_PATH),
    ]
    # Run again (every Argo CD sync does): the password is kept, never rotated.
    state.requests.clear()
    again = run_job()
    assert again.returncode == 0, again.stderr
    assert "exists: kept" in again.stdout
    assert state.secrets["mlflow-postgres"]["stringData"]["POSTGRES_PASSWORD"] == password
    assert state.requests == [("GET", f"{SECRETS_PATH}/mlflow-postgres")]


def test_two_runs_make_different_passwords(run_job: Any, api: tuple[FakeApi, int]) -> None:
    state, _ = api
    assert run_job().returncode == 0
    first = state.secrets.pop("mlflow-postgres")["stringData"]["POSTGRES_PASSWORD"]
    assert run_job().returncode == 0
    assert state.secrets["mlflow-postgres"]["stringData"]["POSTGRES_PASSWORD"] != first


def test_losing_a_creation_race_keeps_the_other_password(
    run_job: Any, api: tuple[FakeApi, int]
) -> None:
    state, _ = api
    state.lose_race = True
    result = run_job()
    assert result.returncode == 0, result.stderr
    assert "exists: kept" in result.stdout
    assert state.secrets["mlflow-postgres"]["stringData"]["POSTGRES_PASSWORD"] == "the-winner's"


def test_missing_rights_fail_the_job_naming_the_role(
    run_job: Any, api: tuple[FakeApi, int]
) -> None:
    state, _ = api
    state.forbid = True
    result = run_job()
    assert result.returncode != 0  # the Job retries (backoffLimit), then shows Failed
    assert "HTTP 403" in result.stderr
    assert "mlflow-postgres-secret" in result.stderr
    assert not state.secrets
