"""The Typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="kfp-mlflow",
    help="Reproducible ML training on Kubeflow Pipelines, tracked in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
