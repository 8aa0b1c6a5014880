"""KFP API failures as one-line errors: what went wrong, and what to do about it.

The kfp SDK lets three kinds of failure escape: ``kfp_server_api.ApiException`` (an HTTP answer,
or status 0 for TLS errors), urllib3 errors (nothing answered) and ``ValueError``s of its own.
Every call into the API goes through :func:`kfp_api_errors`, so none of them reaches the user as a
stack trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kfp_mlflow.core.exceptions import KfpApiError


class KfpUnreachableError(KfpApiError):
    """Nothing answered at the KFP host (refused, DNS, timeout, TLS)."""


class KfpAuthError(KfpApiError):
    """The KFP API answered 401 or 403."""


class KfpNotFoundError(KfpApiError):
    """The KFP API does not know the experiment, pipeline, run or schedule asked for."""


class KfpRejectedError(KfpApiError):
    """The KFP API refused the request as invalid (a bad pipeline, parameter or schedule)."""


def server_message(body: Any) -> str:
    """The ``message`` of a google.rpc.Status body, else the body's first line."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or "").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text.splitlines()[0][:300] if text else ""
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:300]
    return text[:300]


def _is_transport_error(error: BaseException) -> bool:
    import urllib3

    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def is_transient(error: BaseException) -> bool:
    """Worth retrying: nothing answered, or a gateway/server said "try again"."""
    from kfp_server_api import ApiException

    if isinstance(error, KfpUnreachableError) or _is_transport_error(error):
        return True
    if isinstance(error, ApiException):
        return error.status in (0, 502, 503, 504) and "SSL" not in str(error.reason or "")
    return False


def translate(error: BaseException, host: str, action: str) -> KfpApiError:
    """The one-line error for ``error`` raised while ``action`` against ``host``."""
    from kfp_server_api import ApiException

    if isinstance(error, KfpApiError):
        return error
    if isinstance(error, ApiException):
        status = error.status or 0
        detail = server_message(error.body) or str(error.reason or "").splitlines()[0]
        if status == 0:
            return KfpUnreachableError(
                f"cannot {action}: TLS or connection failure talking to {host} ({detail})",
                hint="check KFP_MLFLOW_KFP_HOST and KFP_MLFLOW_KFP_CA_FILE",
            )
        if status in (401, 403):
            word = "unauthenticated" if status == 401 else "forbidden"
            return KfpAuthError(
                f"cannot {action}: the KFP API at {host} answered {status} ({word})"
                + (f": {detail}" if detail else ""),
                hint="set KFP_MLFLOW_KFP_TOKEN (or --token-file) and, for multi-user KFP, "
                "KFP_MLFLOW_KFP_NAMESPACE to a profile you may use",
            )
        if status == 404:
            return KfpNotFoundError(f"cannot {action}: not found on {host}: {detail or 'HTTP 404'}")
        if status in (400, 409, 412, 422):
            return KfpRejectedError(f"cannot {action}: the KFP API rejected it: {detail}")
        return KfpApiError(f"cannot {action}: the KFP API at {host} answered {status}: {detail}")
    if _is_transport_error(error):
        reason = getattr(error, "reason", None) or error
        return KfpUnreachableError(
            f"cannot {action}: no KFP API answers at {host} ({type(reason).__name__})",
            hint="is the host right and reachable (e.g. `kubectl port-forward -n kubeflow "
            "svc/ml-pipeline-ui 8080:80`)?",
        )
    return KfpApiError(f"cannot {action}: {error}")


@contextmanager
def kfp_api_errors(host: str, action: str) -> Iterator[None]:
    """Turn whatever the KFP client raises while ``action`` into a :class:`KfpApiError`."""
    from kfp_server_api import ApiException

    try:
        yield
    except KfpApiError:
        raise
    except (ApiException, OSError, ValueError) as error:
        raise translate(error, host, action) from error
    except Exception as error:
        if _is_transport_error(error):
            raise translate(error, host, action) from error
        raise
