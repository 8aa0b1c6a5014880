"""Names MLflow will accept, checked before any task runs (MLflow checks them only on write)."""

from __future__ import annotations

import posixpath

from kfp_mlflow.core.exceptions import ConfigError


def check_model_name(name: str) -> str:
    """A registered model name as MLflow's registry accepts it (mlflow.utils.validation rules:
    not empty, no ``/`` or ``:``, a path that normalises to itself). Returns it."""
    problem = None
    if not name or not name.strip():
        problem = "is empty"
    elif "/" in name or ":" in name:
        problem = "contains '/' or ':'"
    elif posixpath.normpath(name) != name or name.startswith(("..", ".")):
        problem = "is not a plain name (it normalises to another path)"
    if problem:
        raise ConfigError(
            f"model_name: {name!r} {problem}, which MLflow's registry rejects",
            hint="use letters, digits, '-', '_' and '.', e.g. house-prices",
        )
    return name
