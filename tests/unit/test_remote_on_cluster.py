"""The same submit/follow/schedule path against a real KFP (``make cluster-test``).

Skips, with the reason printed, unless ``KFP_MLFLOW_KFP_HOST`` names a KFP API that answers.
Read at import time: the autouse fixture clears ``KFP_MLFLOW_*`` before each test runs.
"""

from __future__ import annotations

import os
import urllib.request

import pytest

from kfp_mlflow.core.settings import Settings
from kfp_mlflow.remote import (
    KfpConnection,
    create_schedule,
    delete_schedule,
    follow_run,
    submit_pipeline,
)
from tests.fakes.fixtures import tiny_package  # noqa: F401

_ENV = {k: v for k, v in os.environ.items() if k.startswith("KFP_MLFLOW_KFP_")}
_HOST = _ENV.get("KFP_MLFLOW_KFP_HOST")


def _reachable(host: str | None) -> str | None:
    if not host:
        return "KFP_MLFLOW_KFP_HOST is not set"
    try:
        urllib.request.urlopen(f"{host.rstrip('/')}/apis/v2beta1/healthz", timeout=3).close()
    except Exception as error:
        return f"no KFP API at {host}: {error}"
    return None


pytestmark = pytest.mark.on_cluster


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> KfpConnection:
    reason = _reachable(_HOST)
    if reason:
        print(f"skipping on_cluster test: {reason}")
        pytest.skip(reason)
    for name, value in _ENV.items():
        monkeypatch.setenv(name, value)
    return KfpConnection.from_settings(Settings())


def test_submit_follow_schedule_on_cluster(cluster, tiny_package) -> None:  # noqa: F811
    settings = Settings()
    run = submit_pipeline(cluster, package=tiny_package, params=["n=2"], settings=settings)
    assert (
        submit_pipeline(cluster, package=tiny_package, settings=settings).version_created is False
    )
    assert follow_run(run.run_id, cluster, poll_interval=5, settings=settings).succeeded
    info = create_schedule(
        cluster,
        name=f"kfp-mlflow-test-{run.run_id[:8]}",
        cron="0 3 * * *",
        package=tiny_package,
        enabled=False,
        settings=settings,
    )
    delete_schedule(info.schedule_id, cluster, settings=settings)
