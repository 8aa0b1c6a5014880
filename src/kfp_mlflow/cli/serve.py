"""Commands: `serve`, `render-serving`, `export-onnx` — a registered version, served or exported."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kfp_mlflow.cli._app import app
from kfp_mlflow.core.exceptions import PipelineRunError
from kfp_mlflow.core.settings import Settings, get_settings

ModelName = Annotated[str, typer.Option("--model-name", help="Registered model name.")]
Alias = Annotated[
    str | None, typer.Option(help="Alias to resolve once (default: champion).", show_default=False)
]
Version = Annotated[str | None, typer.Option(help="A version number instead of an alias.")]


def _settings() -> Settings:
    from kfp_mlflow.local.runner import resolve_tracking_uri

    settings = get_settings()
    return settings.model_copy(update={"tracking_uri": resolve_tracking_uri(settings)})


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def serve(
    model_name: ModelName,
    alias: Alias = None,
    version: Version = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5001,
) -> None:
    """Serve one registered version with MLflow's scoring server on 127.0.0.1 (Ctrl-C stops).
    The alias is resolved once: the served version does not change if the alias moves."""
    from kfp_mlflow.serving.server import ScoringServer, resolve_version

    settings = _settings()
    resolved = resolve_version(model_name, alias=alias, version=version, settings=settings)
    out = Console(file=sys.stdout, highlight=False)
    out.print(f"[bold]kfp-mlflow[/] serve {resolved.describe()}", soft_wrap=True)
    # The scoring server runs in its own process group: a SIGTERM (a supervisor, `kill`) must
    # stop it too, as Ctrl-C does, not leave it serving as an orphan.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    server = ScoringServer(resolved, port=port, settings=settings)
    try:
        server.start().wait_ready()
        out.print(
            f"POST {server.invocations_url}  "
            '(JSON: {"dataframe_split": {"columns": [...], "data": [[...]]}}); Ctrl-C stops',
            markup=False,
            soft_wrap=True,
        )
        code = server.wait()
    except KeyboardInterrupt:
        code = 130
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    if code == 130:
        raise typer.Exit(code=130)
    if code != 0:
        raise PipelineRunError(f"the scoring server for {resolved.uri} exited with code {code}")


@app.command("render-serving")
def render_serving(
    model_name: ModelName,
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory to write into.")],
    alias: Alias = None,
    version: Version = None,
    artifacts_destination: Annotated[
        str | None,
        typer.Option(
            help="The tracking server's --artifacts-destination (s3://bucket/artifacts), "
            "to turn mlflow-artifacts:/ URIs into ones KServe downloads.",
        ),
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="metadata.namespace, if any.")] = None,
    service_account: Annotated[
        str, typer.Option(help="ServiceAccount holding the artifact store's credentials.")
    ] = "kfp-mlflow-serving",
) -> None:
    """Write a KServe InferenceService (MLflow format, v2 protocol) for the RESOLVED version:
    commit it and Argo CD deploys exactly that version; a promotion changes one line."""
    from kfp_mlflow.serving.server import resolve_version, write_inference_service

    settings = _settings()
    resolved = resolve_version(model_name, alias=alias, version=version, settings=settings)
    path, uri = write_inference_service(
        resolved,
        output,
        artifacts_destination=artifacts_destination,
        namespace=namespace,
        service_account=service_account,
    )
    out = Console(file=sys.stdout, highlight=False)
    out.print(f"[bold]kfp-mlflow[/] render-serving {resolved.describe()}", soft_wrap=True)
    out.print(f"wrote {path} (storageUri {uri})", soft_wrap=True)


@app.command("export-onnx")
def export_onnx(
    model_name: ModelName,
    test_data: Annotated[
        Path, typer.Option(help="Parquet or CSV test split for the parity check.")
    ],
    alias: Alias = None,
    version: Version = None,
) -> None:
    """Convert a scikit-learn version (xgboost/lightgbm ones included) to ONNX (needs `pip
    install 'kfp-mlflow\\[onnx]'`), check it predicts like the original on the test split, log
    both on the version's training run."""
    # The backslash keeps Rich (which renders --help) from reading "[onnx]" as markup and
    # dropping it: the help would name an install command without the extra.
    from kfp_mlflow.models.onnx import export_onnx as export
    from kfp_mlflow.serving.server import resolve_version

    settings = _settings()
    resolved = resolve_version(model_name, alias=alias, version=version, settings=settings)
    result = export(resolved.name, resolved.version, test_data=test_data, settings=settings)
    out = Console(file=sys.stdout, highlight=False)
    out.print(
        f"[bold]kfp-mlflow[/] export-onnx {resolved.describe()}: {result.summary()}", soft_wrap=True
    )
