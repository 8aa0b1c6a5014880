"""What an MLflow client error says about the server, read from the error objects, never from
their wording (a port or a model id holding ``500`` once passed for a server error).

The evidence, in the order it is looked for along the exception chain (``raise ... from`` and
the implicit context, because MLflow wraps transport errors both ways):

* a ``requests`` answer: ``HTTPError`` carries the response and its status; ``RetryError`` means
  the client kept getting one of MLflow's retry statuses (429, 5xx) until its retries ran out;
  ``ConnectionError`` / ``Timeout`` mean no answer at all;
* MLflow's ``RestException``: the server answered with MLflow's error body; its ``error_code``
  maps to an HTTP status (``get_http_status_code``);
* any other ``MlflowException`` whose ``error_class`` MLflow marked ``CP_...`` (control plane: an
  HTTP answer without MLflow's body, e.g. a proxy's page; MLflow >= 3.12 sets it, older
  releases leave such an answer looking like this side's).

Anything else, an ``MlflowException`` included, was raised on this side of the connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    SERVER = "server"
    """The server or its artifact store answered 5xx (or kept answering a retry status)."""
    UNREACHABLE = "unreachable"
    """No answer: connection refused or reset, unknown host, timed out."""
    REFUSED = "refused"
    """The server answered 4xx: the request, or what it names, is wrong."""
    CLIENT = "client"
    """Raised on this side of the connection; no HTTP answer involved."""


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    http_status: int | None = None
    """The answer's status; for a ``RestException``, the one MLflow maps its error code to."""
    error_code: str | None = None
    """MLflow's error code (``RESOURCE_DOES_NOT_EXIST``...), when the error is MLflow's."""

    @property
    def server_side(self) -> bool:
        """The server or the way to it failed: retrying later may help, the request is fine."""
        return self.kind in (FailureKind.SERVER, FailureKind.UNREACHABLE)


def classify(error: BaseException) -> Failure:
    """The failure ``error`` (raised by an MLflow or requests call) stands for."""
    error_code = getattr(error, "error_code", None)
    code = error_code if isinstance(error_code, str) else None
    for link in _chain(error):
        found = _evidence(link)
        if found is not None:
            return Failure(found.kind, found.http_status, code or found.error_code)
    return Failure(FailureKind.CLIENT, None, code)


def server_failed(error: BaseException) -> bool:
    """Whether ``error`` means the server (or its artifact store) failed or could not be reached,
    as opposed to refusing the request or failing on this side."""
    return classify(error).server_side


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def _evidence(link: BaseException) -> Failure | None:
    import requests

    if isinstance(link, requests.HTTPError) and link.response is not None:
        return _answered(link.response.status_code)
    if isinstance(link, requests.exceptions.RetryError):
        return Failure(FailureKind.SERVER)
    # A connection that broke mid-answer (ChunkedEncodingError) is no answer either.
    no_answer = (
        requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError
    )
    if isinstance(link, no_answer):
        return Failure(FailureKind.UNREACHABLE)
    try:
        from mlflow.exceptions import MlflowException, RestException
    except ImportError:  # pragma: no cover - MLflow is a dependency; requests alone is enough
        return None
    if isinstance(link, RestException) or (
        isinstance(link, MlflowException)
        and str(getattr(link, "error_class", None) or "").startswith("CP_")
    ):
        failure = _answered(int(link.get_http_status_code()))  # type: ignore[no-untyped-call]
        return Failure(failure.kind, failure.http_status, str(link.error_code))
    return None


def _answered(status: int) -> Failure:
    kind = FailureKind.SERVER if status >= 500 else FailureKind.REFUSED
    return Failure(kind, status)
