"""One version resolver: promotion, serving and batch scoring agree on what exists, against a
real MLflow registry (SQLite store, in process: the same error codes a server sends)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from kfp_mlflow.core.exceptions import ConfigError, TrackingError
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.registry.promotion import CHAMPION, current_champion
from kfp_mlflow.registry.versions import find_version
from kfp_mlflow.serving.scoring import resolve_model
from kfp_mlflow.serving.server import resolve_version


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Model ``m`` with versions 1 and 2, ``@champion`` → 2; its URI."""
    directory = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source=str(directory / "model"))
    client.set_registered_model_alias("m", CHAMPION, "2")
    return uri


@pytest.fixture
def client(registry: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    get_settings.cache_clear()
    return MlflowClient(tracking_uri=registry, registry_uri=registry)


def test_found_and_missing(client: MlflowClient) -> None:
    # (The SQLite store numbers versions with ints, the REST client with strings.)
    assert str(find_version(client, "m", alias=CHAMPION).version) == "2"  # type: ignore[union-attr]
    assert str(find_version(client, "m", version="1").version) == "1"  # type: ignore[union-attr]
    # MLflow answers these with INVALID_PARAMETER_VALUE (alias) and RESOURCE_DOES_NOT_EXIST.
    assert find_version(client, "m", alias="staging") is None
    assert find_version(client, "m", version="9") is None
    assert find_version(client, "nope", alias=CHAMPION) is None
    assert find_version(client, "nope", version="1") is None
    with pytest.raises(ValueError, match="exactly one"):
        find_version(client, "m", alias=CHAMPION, version="1")


def test_a_failing_registry_is_not_a_missing_version(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(MlflowException):
        find_version(MlflowClient(tracking_uri=closed, registry_uri=closed), "m", alias=CHAMPION)


def test_promotion_serving_and_scoring_resolve_alike(client: MlflowClient) -> None:
    assert str(current_champion(client, "m").version) == "2"  # type: ignore[union-attr]
    assert current_champion(client, "nope") is None
    assert resolve_version("m").version == "2"
    assert resolve_version("m", version="1").version == "1"
    assert resolve_model(client, "m").version == "2"
    assert resolve_model(client, "m", version="1").version == "1"


@pytest.mark.parametrize(("alias", "version"), [("staging", None), (None, "9")])
def test_serving_and_scoring_refuse_what_does_not_exist(
    client: MlflowClient, alias: str | None, version: str | None
) -> None:
    with pytest.raises(ConfigError):
        resolve_version("m", alias=alias, version=version)
    with pytest.raises(ConfigError):
        resolve_model(client, "m", alias=alias or "", version=version or "")


def test_an_unreachable_registry_is_a_tracking_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", closed)
    get_settings.cache_clear()
    with pytest.raises(TrackingError):
        resolve_version("m")
