"""Integration fixtures: a real `mlflow server` (and SeaweedFS where S3 matters) on 127.0.0.1."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.server import LocalMlflowServer
from tests.conftest import UPDATE_GOLDEN
from tests.support.docker import component_image  # noqa: F401  (the session-wide image fixture)

_PREFIXES = ("MLFLOW_", "KFP_MLFLOW_", "AWS_", "KFP_")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = LocalMlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster: the backend store the manifests deploy for MLflow."""
    from tests.support.postgres import start_postgres

    database = start_postgres()
    yield database.uri
    database.stop()


@pytest.fixture(scope="session")
def mlflow_server_postgres(
    postgres_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    server = LocalMlflowServer(
        tmp_path_factory.mktemp("mlflow-server-postgres"), backend_store_uri=postgres_uri
    )
    server.start()
    yield server.url
    server.stop()


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend_server(request: pytest.FixtureRequest) -> str:
    """An MLflow server on each backend store; PostgreSQL starts only if a test asks for it."""
    name = "mlflow_server" if request.param == "sqlite" else "mlflow_server_postgres"
    return str(request.getfixturevalue(name))


@contextmanager
def tracked_environment(
    server_url: str, work_dir: Path, **variables: str
) -> Iterator[dict[str, str]]:
    """A clean environment pointing at ``server_url`` with a unique experiment and model."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "MLFLOW_TRACKING_URI": server_url,
        "MLFLOW_EXPERIMENT_NAME": f"it-{suffix}",
        "KFP_MLFLOW_MODEL_NAME": f"model-{suffix}",
        "KFP_MLFLOW_WORK_DIR": str(work_dir),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        # Offline, MLflow's telemetry thread fails to fetch its config and deletes
        # _MLFLOW_TELEMETRY_SESSION_ID from os.environ while requests may be iterating it: a
        # random KeyError, seen once in 24 promotion-race trials.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **variables,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(_PREFIXES) and name != UPDATE_GOLDEN:
                patch.delenv(name)
        for name, value in names.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        try:
            yield names
        finally:
            get_settings.cache_clear()


@pytest.fixture
def tracked(mlflow_server: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        yield names


def client():  # type: ignore[no-untyped-def]
    from kfp_mlflow.tracking.runs import tracking_client

    return tracking_client(get_settings())
