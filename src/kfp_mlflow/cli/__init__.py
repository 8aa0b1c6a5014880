"""The `kfp-mlflow` command line: `run`, `compile`, `render`, `submit`, `schedule`, ..."""

from __future__ import annotations

import sys

from rich.console import Console

from kfp_mlflow.cli import cluster, local, remote  # noqa: F401  (each registers its commands)
from kfp_mlflow.cli._app import app
from kfp_mlflow.exceptions import KfpMlflowError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: one clear line per expected error, never a traceback."""
    try:
        app(standalone_mode=False)
    except KfpMlflowError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except SystemExit:
        raise
    except BaseException as error:  # click's own usage errors arrive here in non-standalone mode
        import click

        if isinstance(error, click.exceptions.Exit):
            sys.exit(error.exit_code)
        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        if isinstance(error, click.exceptions.Abort | KeyboardInterrupt):
            Console(stderr=True).print("aborted")
            sys.exit(130)
        raise
