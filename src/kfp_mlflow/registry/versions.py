"""The one version resolver: a registered model's alias or version number → its version, or
``None`` when the model, the alias or the version does not exist.

MLflow says "does not exist" in more than one way: a missing version or model is
``RESOURCE_DOES_NOT_EXIST``, a missing alias ``INVALID_PARAMETER_VALUE`` (an HTTP 400, not a
404), some stores ``NOT_FOUND``. Promotion (``@champion``), serving and batch scoring all ask
here, so they agree on what "missing" means; what a missing one means to them is theirs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.exceptions import MlflowException

_MISSING = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


def find_version(
    client: MlflowClient, name: str, *, alias: str | None = None, version: str | None = None
) -> ModelVersion | None:
    """The version ``alias`` points at now, or version ``version`` (exactly one of them); None
    when it, or the model, does not exist. Every other registry error propagates."""
    from mlflow.exceptions import MlflowException

    if (alias is None) == (version is None):
        raise ValueError("find_version: pass exactly one of alias and version")
    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, str(version))
    except MlflowException as error:
        if is_missing(error):
            return None
        raise


def is_missing(error: MlflowException) -> bool:
    """Whether the registry answered that the model, alias or version does not exist."""
    return error.error_code in _MISSING
