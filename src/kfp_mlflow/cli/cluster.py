"""Commands: cluster (`render`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kfp_mlflow.cli._app import app
from kfp_mlflow.core.exceptions import ConfigError


@app.command()
def render(
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Directory for pipeline.yaml and pipeline-version.yaml."
        ),
    ] = Path("manifests/pipelines/base"),
    namespace: Annotated[
        str, typer.Option(help="Namespace of the KFP API server (standalone install: kubeflow).")
    ] = "kubeflow",
    from_env: Annotated[
        bool,
        typer.Option(
            "--from-env/--defaults",
            help="Take parameter defaults and the image from the environment (KFP_MLFLOW_*), "
            "or from built-in defaults only (what the committed manifests use).",
        ),
    ] = False,
) -> None:
    """Render the training pipeline as Kubernetes-native Pipeline + PipelineVersion resources."""
    from kfp_mlflow.cluster.pipeline_resources import clean_settings, write_pipeline_resources
    from kfp_mlflow.core.settings import get_settings

    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file", hint="pass a directory")
    settings = get_settings() if from_env else clean_settings()
    for path in write_pipeline_resources(output, settings=settings, namespace=namespace):
        typer.echo(str(path))
