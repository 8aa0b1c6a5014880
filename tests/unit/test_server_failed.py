"""Which MLflow client errors mean the server failed (exit 4) rather than refused (no retry)."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from kfp_mlflow.tracking import server_failed


@pytest.mark.parametrize(
    "message",
    [
        "API request to endpoint /api/2.0/mlflow/runs/create failed with error code 500 != 200.",
        "HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded with url: /x "
        "(Caused by ResponseError('too many 503 error responses'))",
        "500 Server Error: INTERNAL SERVER ERROR for url: http://127.0.0.1:40001/api/x",
        "[Errno 111] Connection refused",
        "Read timed out. (read timeout=25)",
    ],
)
def test_server_failures(message: str) -> None:
    assert server_failed(MlflowException(message))


@pytest.mark.parametrize(
    "message",
    [
        # A 404 whose URL holds "500" in a port or an id is still a refusal.
        "404 Client Error: Not Found for url: http://127.0.0.1:45001/api/2.0/mlflow-artifacts/"
        "artifacts/500/models/m-1/artifacts/MLmodel",
        "RESOURCE_DOES_NOT_EXIST: Run '5000' not found",
        "INVALID_PARAMETER_VALUE: max_results must be at most 50000",
    ],
)
def test_refusals(message: str) -> None:
    assert not server_failed(MlflowException(message))
