"""The `kfp-mlflow` command line: `run`, `compile`, `render`, `submit`, `schedule`, ..."""

from __future__ import annotations

import sys

from rich.console import Console

from kfp_mlflow.cli import (  # noqa: F401  (each module registers its commands)
    cluster,
    local,
    predict,
    registry,
    remote,
    reproduce,
    runs,
    serve,
)
from kfp_mlflow.cli._app import app
from kfp_mlflow.core.exceptions import KfpMlflowError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: one clear line per expected error, never a traceback."""
    try:
        # Standalone mode: click reports its own usage errors (typer vendors click, so its
        # exception classes are not the `click` package's) and exits with code 2.
        app()
    except KfpMlflowError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
