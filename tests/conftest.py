"""Shared fixtures: every test starts with no MLflow / kfp-mlflow variables and fresh settings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kfp_mlflow.core.settings import get_settings

_OWNED_PREFIXES = ("MLFLOW_", "KFP_MLFLOW_", "AWS_", "KFP_")
# Rewrites golden files instead of comparing (`make golden`); the only variable a test keeps.
UPDATE_GOLDEN = "KFP_MLFLOW_UPDATE_GOLDEN"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_OWNED_PREFIXES) and name != UPDATE_GOLDEN:
            monkeypatch.delenv(name, raising=False)
    # A failing server must fail a test fast, not after MLflow's default minutes of retries.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    # Offline, MLflow's telemetry thread can delete its session variable while requests reads
    # the environment (a random KeyError): off in tests.
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
