"""Commands: cluster."""

from __future__ import annotations

from kfp_mlflow.cli._app import app  # noqa: F401
