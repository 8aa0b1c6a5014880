"""Which MLflow client errors mean the server failed (exit 4, worth a retry later) rather than
refused the request: classified from the error objects MLflow's own client raises against a
small HTTP server that answers as a failing MLflow server, a proxy or a store would."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from kfp_mlflow.core.exceptions import TrackingError
from kfp_mlflow.tracking.failures import Failure, FailureKind, classify, server_failed
from kfp_mlflow.tracking.runs import mlflow_errors


@dataclass
class Answer:
    status: int
    body: str = ""
    content_type: str = "application/json"
    delay_s: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        answer = self.server.answer
        time.sleep(answer.delay_s)
        body = answer.body.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    answer = Answer(200, "{}")

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out hung up before the answer: expected here


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    instance = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=instance.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield instance
    instance.shutdown()
    instance.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _mlflow_error(server: _Server, answer: Answer) -> MlflowException:
    server.answer = answer
    with pytest.raises(MlflowException) as raised:
        MlflowClient(tracking_uri=_url(server)).get_run("5000")
    return raised.value


def _mlflow_body(error_code: str, message: str) -> str:
    return json.dumps({"error_code": error_code, "message": message})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # MLflow's own error body: the server's error code decides.
        (
            Answer(404, _mlflow_body("RESOURCE_DOES_NOT_EXIST", "Run '5000' not found")),
            Failure(FailureKind.REFUSED, 404, "RESOURCE_DOES_NOT_EXIST"),
        ),
        (
            Answer(400, _mlflow_body("INVALID_PARAMETER_VALUE", "max_results <= 50000")),
            Failure(FailureKind.REFUSED, 400, "INVALID_PARAMETER_VALUE"),
        ),
        # A retry status (here with no retries left): the client gave up on a failing server,
        # whatever the body; urllib3 keeps the status in its message only.
        (
            Answer(500, _mlflow_body("INTERNAL_ERROR", "artifact store: [Errno 20] Not a dir")),
            Failure(FailureKind.SERVER, None),
        ),
        (Answer(503, "<html>busy</html>", "text/html"), Failure(FailureKind.SERVER, None)),
        (Answer(500, "Internal Server Error", "text/plain"), Failure(FailureKind.SERVER, None)),
        # Not MLflow's body, not a retry status: a proxy's or a store's own page; the status is
        # the one MLflow maps its error code back to.
        (
            Answer(507, "<html>Insufficient Storage</html>", "text/html"),
            Failure(FailureKind.SERVER, 500, "INTERNAL_ERROR"),
        ),
        (
            Answer(404, "<html>no such path</html>", "text/html"),
            Failure(FailureKind.REFUSED, 404, "ENDPOINT_NOT_FOUND"),
        ),
    ],
)
def test_answers_are_classified_by_status_and_error_code(
    server: _Server, answer: Answer, expected: Failure
) -> None:
    failure = classify(_mlflow_error(server, answer))
    if expected.error_code is None:  # MLflow's wrapper of a transport error: no code of its own
        failure = Failure(failure.kind, failure.http_status)
    assert failure == expected


def test_no_answer_is_unreachable(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(MlflowException) as refused:
        MlflowClient(tracking_uri=f"http://127.0.0.1:{closed}").get_run("1")
    assert classify(refused.value).kind is FailureKind.UNREACHABLE

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    timed_out = _mlflow_error(server, Answer(200, "{}", delay_s=2))
    assert classify(timed_out).kind is FailureKind.UNREACHABLE


def test_store_answers_are_classified_by_their_status(server: _Server) -> None:
    """Artifact downloads raise requests' HTTPError itself; a "500" inside the URL (a port, a
    model id) says nothing about the answer."""
    for status, kind in ((500, FailureKind.SERVER), (404, FailureKind.REFUSED)):
        server.answer = Answer(status, "no", "text/plain")
        response = requests.get(f"{_url(server)}/artifacts/500/models/m-500c/MLmodel", timeout=5)
        with pytest.raises(requests.HTTPError) as raised:
            response.raise_for_status()
        assert classify(raised.value) == Failure(kind, status)
        # ... and so is an MLflow error wrapping it.
        wrapped = MlflowException(f"Failed to download: {raised.value}")
        wrapped.__cause__ = raised.value  # what `raise ... from error` sets
        assert classify(wrapped) == Failure(kind, status, "INTERNAL_ERROR")


def test_errors_raised_on_this_side_are_not_the_servers() -> None:
    # MLflow's default error code is INTERNAL_ERROR (HTTP 500) even for its own local checks.
    local = MlflowException("model signature mismatch: 500 Server Error in a message")
    assert local.get_http_status_code() == 500
    assert classify(local) == Failure(FailureKind.CLIENT, None, "INTERNAL_ERROR")
    assert not server_failed(local)
    assert not server_failed(ValueError("Connection refused"))


def test_mlflow_errors_words_the_tracking_error_by_kind(server: _Server) -> None:
    client = MlflowClient(tracking_uri=_url(server))
    for answer, failed in (
        (Answer(500, _mlflow_body("INTERNAL_ERROR", "boom")), True),
        (Answer(404, _mlflow_body("RESOURCE_DOES_NOT_EXIST", "Run '500' not found")), False),
    ):
        server.answer = answer
        with pytest.raises(TrackingError) as raised, mlflow_errors("read a run"):
            client.get_run("500")
        assert raised.value.__cause__ is not None
        assert server_failed(raised.value.__cause__) is failed
        assert (raised.value.hint is not None) is failed  # a server failure says what to check
