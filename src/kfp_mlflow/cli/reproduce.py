"""Command: `reproduce models:/<name>/<version>` — rebuild a version and compare its outputs."""

from __future__ import annotations

import re
import sys
from typing import Annotated

import typer
from rich.console import Console

from kfp_mlflow.cli._app import app
from kfp_mlflow.core.exceptions import ConfigError, ReproducibilityError
from kfp_mlflow.core.settings import get_settings

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>\d+)$")


@app.command()
def reproduce(
    model_uri: Annotated[str, typer.Argument(help="models:/<name>/<version>")],
    runner: Annotated[
        str, typer.Option(help="subprocess, or docker: the tasks in the component image.")
    ] = "subprocess",
) -> None:
    """Rebuild a registered version from its recorded data snapshot and recipe, compare the
    rebuilt model's outputs with the registered one's on the same test split (exit 9 if they
    differ), and name any package whose version differs from the registered run's."""
    from kfp_mlflow.core.contracts import Reproduction
    from kfp_mlflow.core.tag_schema import TAG_RECIPE
    from kfp_mlflow.local.runner import resolve_tracking_uri, run_local
    from kfp_mlflow.models.recipes import parse_recipe
    from kfp_mlflow.pipelines.reproduce import build_reproduce_pipeline
    from kfp_mlflow.tracking.runs import mlflow_errors, tracking_client

    match = _MODEL_URI.match(model_uri)
    if not match:
        raise ConfigError(f"model: {model_uri!r} is not models:/<name>/<version>")
    if runner not in ("subprocess", "docker"):
        raise ConfigError(f"--runner: {runner!r} is not subprocess or docker")
    settings = get_settings()
    settings = settings.model_copy(update={"tracking_uri": resolve_tracking_uri(settings)})
    name, version = match["name"], match["version"]
    with mlflow_errors(f"read {model_uri}"):
        registered = tracking_client(settings).get_model_version(name, version)
    plan = parse_recipe(registered.tags.get(TAG_RECIPE), model_uri)
    out = Console(file=sys.stdout, highlight=False)
    out.print(
        f"[bold]kfp-mlflow[/] reproduce {model_uri}: {plan.candidate['name']} from {plan.data}"
    )
    arguments = {
        "model_name": name, "version": version, "data": plan.data, "target": plan.target,
        "task": plan.task, "seed": plan.seed, "test_size": plan.test_size,
        "candidate": plan.candidate,
    }  # fmt: skip
    result = run_local(build_reproduce_pipeline(settings), arguments, settings, runner=runner)  # type: ignore[arg-type]
    result.raise_for_failure()
    outcome = result.record(Reproduction)
    assert outcome is not None  # the compare step succeeded, so it wrote its record
    differs = "; ".join(f"{k} {v}" for k, v in outcome.environment_differs.items())
    out.print(f"environment: {'differs: ' + differs if differs else 'identical'}")
    verdict = f"max abs diff {outcome.max_abs_diff:.6g} over {outcome.rows} test rows"
    if outcome.max_abs_diff != 0:
        raise ReproducibilityError(
            f"{model_uri} did not reproduce: {verdict} ({outcome.compared})",
            hint=f"environment {'differs: ' + differs if differs else 'identical'}; "
            f"MLflow run {outcome.run_id}",
        )
    out.print(f"reproduced exactly: {verdict} ({outcome.compared}); MLflow run {outcome.run_id}")
