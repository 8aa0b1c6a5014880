"""How to reach a Kubeflow Pipelines API: host, namespace, credentials, TLS — from the settings.

``kfp.Client`` is used as the entry point (it owns auth headers and the generated API objects),
with three changes made in a small subclass, each for a reason:

* it never reads or writes ``~/.config/kfp/context.json`` — the settings object is the one source
  of configuration, and a command must not change what the next one does;
* its health probe makes one attempt with a timeout (the SDK retries 5 × 5 s, which turns an
  unreachable host or a 401 into a 25-second hang);
* every request has a timeout and connection attempts are retried only briefly (the generated
  client waits forever by default), so a dead host fails in seconds with one clear line.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.remote.errors import kfp_api_errors

if TYPE_CHECKING:
    import kfp

# Where Kubernetes mounts a pod's identity. The KFP-audience token (Kubeflow's PodDefault
# "access-ml-pipeline") is preferred over the plain service-account token when both exist.
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
KFP_AUDIENCE_TOKEN = Path("/var/run/secrets/kubeflow/pipelines/token")
IN_CLUSTER_HOST = "http://ml-pipeline.{namespace}.svc.cluster.local:8888"


@dataclass(frozen=True)
class KfpConnection:
    """Where and how to call the KFP API. ``repr`` never shows the token."""

    host: str
    namespace: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    ca_file: Path | None = None
    ui_url: str | None = None
    request_timeout: int = 30
    connect_retries: int = 1

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> KfpConnection:
        """The connection the settings describe; ``overrides`` (CLI flags) win when not None."""
        s = settings or get_settings()
        given = {k: v for k, v in overrides.items() if v is not None}
        host = given.pop("host", None) or s.kfp_host
        namespace = given.pop("namespace", None) or s.kfp_namespace
        token = given.pop("token", None) or (
            s.kfp_token.get_secret_value() if s.kfp_token else None
        )
        token_file = given.pop("token_file", None) or s.kfp_token_file
        if not host:
            # Inside a pod with no host configured: the in-cluster service, with the pod's own
            # token. A token found on disk is only ever sent to that in-cluster default, never to
            # a host someone configured, so a pod's identity cannot leak to an outside endpoint.
            if not (SERVICE_ACCOUNT_DIR / "token").is_file():
                raise ConfigError(
                    "no KFP API host is configured",
                    hint="set KFP_MLFLOW_KFP_HOST or pass --host (e.g. http://localhost:8080)",
                )
            pod_namespace = _read(SERVICE_ACCOUNT_DIR / "namespace") or "kubeflow"
            host = IN_CLUSTER_HOST.format(namespace="kubeflow")
            namespace = namespace or pod_namespace
            if not token and not token_file:
                token_file = (
                    KFP_AUDIENCE_TOKEN
                    if KFP_AUDIENCE_TOKEN.is_file()
                    else SERVICE_ACCOUNT_DIR / "token"
                )
        if "://" not in host:
            host = f"https://{host}"
        ui_url = given.pop("ui_url", None) or s.kfp_ui_url or host
        return cls(
            host=host.rstrip("/"),
            namespace=namespace or None,
            token=token,
            token_file=Path(token_file) if token_file else None,
            ca_file=given.pop("ca_file", None) or s.kfp_ca_file,
            ui_url=ui_url.rstrip("/"),
            request_timeout=given.pop("request_timeout", None) or s.kfp_request_timeout,
            **given,
        )

    def with_changes(self, **changes: Any) -> KfpConnection:
        return replace(self, **changes)

    def bearer_token(self) -> str | None:
        """The token to send now: explicit, else the file's current content."""
        if self.token:
            return self.token
        if self.token_file:
            token = _read(self.token_file)
            if token is None:
                raise ConfigError(
                    f"cannot read the KFP token file {self.token_file}",
                    hint="check KFP_MLFLOW_KFP_TOKEN_FILE",
                )
            return token
        return None

    def open(self) -> KfpSession:
        """A session on this connection; checks the API answers (and accepts us) first."""
        session = KfpSession(self)
        session.check()
        return session


class KfpSession:
    """An open connection: the kfp client plus the settings it came from."""

    def __init__(self, connection: KfpConnection) -> None:
        self.connection = connection

    @property
    def host(self) -> str:
        return self.connection.host

    @property
    def namespace(self) -> str | None:
        return self.connection.namespace

    @property
    def ui_url(self) -> str:
        return self.connection.ui_url or self.connection.host

    @property
    def timeout(self) -> int:
        return self.connection.request_timeout

    @cached_property
    def client(self) -> kfp.Client:
        if self.connection.ca_file and not Path(self.connection.ca_file).is_file():
            raise ConfigError(
                f"the KFP CA file {self.connection.ca_file} does not exist",
                hint="check KFP_MLFLOW_KFP_CA_FILE / --ca-file",
            )
        with kfp_api_errors(self.host, "connect to the KFP API"):
            return _build_client(self.connection)

    def check(self) -> Any:
        """GET /apis/v2beta1/healthz once: unreachable hosts and bad tokens fail here, clearly."""
        with kfp_api_errors(self.host, "reach the KFP API"):
            return self.client.healthzs.healthz_service_get_healthz(_request_timeout=self.timeout)


def _read(path: Path) -> str | None:
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _build_client(connection: KfpConnection) -> kfp.Client:
    import kfp
    import urllib3
    from kfp_server_api import rest

    class _Client(kfp.Client):  # type: ignore[misc]
        def _load_context_setting_or_default(self) -> None:
            self._context_setting = {"namespace": connection.namespace or ""}

        def set_user_namespace(self, namespace: str) -> None:
            self._context_setting["namespace"] = namespace

        def get_kfp_healthz(self, sleep_duration: int = 5) -> Any:
            return self._healthz_api.healthz_service_get_healthz(
                _request_timeout=connection.request_timeout
            )

        def _load_config(self, *args: Any, **kwargs: Any) -> Any:
            config = super()._load_config(*args, **kwargs)
            # Retry connecting briefly (nothing was sent yet), never a request that was sent:
            # a repeated POST could create a second run.
            config.retries = urllib3.Retry(
                total=None,
                connect=connection.connect_retries,
                read=0,
                redirect=2,
                status=0,
                other=0,
                backoff_factor=0.2,
            )
            if connection.token_file and not connection.token:
                config.api_key["authorization"] = connection.bearer_token()
                config.api_key_prefix["authorization"] = "Bearer"
                # Projected service-account tokens rotate: read the file before each request.
                config.refresh_api_key_hook = lambda cfg: cfg.api_key.__setitem__(
                    "authorization", connection.bearer_token()
                )
            return config

    class _TimeoutRest(rest.RESTClientObject):  # type: ignore[misc]
        def request(self, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
            return super().request(
                *args, _request_timeout=_request_timeout or connection.request_timeout, **kwargs
            )

    with warnings.catch_warnings():
        # "This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later versions."
        warnings.simplefilter("ignore", FutureWarning)
        client = _Client(
            host=connection.host,
            # The SDK treats the literal "kubeflow" as "unset"; our subclass sets it anyway.
            namespace=connection.namespace or "kubeflow",
            existing_token=connection.token,
            ssl_ca_cert=str(connection.ca_file) if connection.ca_file else None,
            ui_host=connection.ui_url,
        )
    api_client = client.runs.api_client
    api_client.rest_client = _TimeoutRest(api_client.configuration)
    return client
