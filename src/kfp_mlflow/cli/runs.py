"""Commands: `runs reconcile` — close MLflow runs that dead local pipeline runs left open."""

from __future__ import annotations

import typer
from rich.console import Console

from kfp_mlflow.cli._app import app
from kfp_mlflow.core.exceptions import TrackingError
from kfp_mlflow.core.settings import get_settings

runs_app = typer.Typer(help="MLflow runs of pipeline runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("reconcile")
def reconcile_runs() -> None:
    """Close as FAILED the runs of dead local pipeline runs (never a live one's)."""
    from kfp_mlflow.core.net import is_healthy
    from kfp_mlflow.local.server import running_server
    from kfp_mlflow.tracking.ledger import entries, reconcile

    settings = get_settings()
    uri = settings.tracking_uri or running_server(settings.work_dir / "mlflow")
    if not uri:
        raise TrackingError(
            "no tracking server to reconcile against",
            hint="set MLFLOW_TRACKING_URI, or run from the directory of your local runs",
        )
    if uri.startswith("http") and not is_healthy(uri, timeout=5.0):
        raise TrackingError(f"MLflow tracking server {uri} is unreachable", hint="start it first")
    done = reconcile(settings, uri)
    out = Console(highlight=False)
    for item in done:
        out.print(f"closed {item.runs_closed} run(s) of local pipeline run {item.kfp_run_id}")
    waiting = [e for e in entries(settings) if e.tracking_uri == uri]
    out.print(
        f"reconciled {len(done)} dead local run(s); "
        f"{len(waiting)} still alive or unreachable left alone"
    )
