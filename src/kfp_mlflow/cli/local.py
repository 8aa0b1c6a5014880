"""Commands that work on this machine: `run`, `compile`, `server stop`, `settings`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kfp_mlflow.cli._app import app
from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.settings import Settings, TaskType, get_settings

console = Console(highlight=False)
server_app = typer.Typer(help="The local MLflow server that `run` starts.", no_args_is_help=True)
app.add_typer(server_app, name="server")


PipelineRef = Annotated[
    str | None,
    typer.Option(
        "--pipeline",
        help="A pipeline of your own: file.py:name or module:name (default: the training one).",
    ),
]
Args = Annotated[
    list[str] | None,
    typer.Option("--arg", help="Any pipeline parameter, name=value (JSON values; repeatable)."),
]
TaskTimeout = Annotated[
    float | None,
    typer.Option(
        "--task-timeout",
        min=1,
        help="Seconds any task may run before it is ended (default KFP_MLFLOW_TASK_TIMEOUT, "
        "4 h); a component's own timeout wins.",
    ),
]
SearchSpaceFile = Annotated[
    Path | None,
    typer.Option(
        "--search-space",
        help="YAML file: candidates (lists of values are grids), metric, thresholds, "
        "min_improvement. Options given alongside win.",
    ),
]


def search_space_arguments(path: Path | None) -> dict[str, Any]:
    """The pipeline arguments a --search-space file sets (checked on load, exit 2)."""
    if path is None:
        return {}
    from kfp_mlflow.steps.search_space import load_search_space

    return load_search_space(path).pipeline_arguments()


@app.command()
def run(
    pipeline: PipelineRef = None,
    data: Annotated[
        str | None, typer.Option(help="CSV/Parquet path, s3:// or sklearn:// URI.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Target column.")] = None,
    task: Annotated[TaskType | None, typer.Option(help="Override the inferred task type.")] = None,
    model_name: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
    primary_metric: Annotated[
        str | None, typer.Option(help="Metric that picks the winner.")
    ] = None,
    threshold: Annotated[
        list[str] | None, typer.Option(help="Quality gate, e.g. r2>=0.3 (repeatable).")
    ] = None,
    min_improvement: Annotated[float | None, typer.Option(help="Margin over @champion.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the split and the models.")] = None,
    arg: Args = None,
    search_space: SearchSpaceFile = None,
    runner: Annotated[
        str,
        typer.Option(
            help="subprocess: tasks run with this Python; docker: every task in the component "
            "image (KFP_MLFLOW_IMAGE, built by .ci/build-image).",
        ),
    ] = "subprocess",
    task_timeout: TaskTimeout = None,
) -> None:
    """Run a pipeline locally (kfp.local) against MLflow; print the outcome."""
    from kfp_mlflow.dsl.pipeline_loading import load_pipeline
    from kfp_mlflow.local.runner import run_local

    settings = with_task_timeout(get_settings(), task_timeout)
    arguments = search_space_arguments(search_space) | _arguments(
        data=data, target=target, task=task, model_name=model_name,
        primary_metric=primary_metric, thresholds=threshold,
        min_improvement=min_improvement, seed=seed,
    ) | _pairs(arg)  # fmt: skip
    if data and "://" not in data and not Path(data).exists():
        raise ConfigError(f"--data: file not found: {data}", hint="give a CSV or Parquet path")
    graph = load_pipeline(pipeline, settings)
    # Bound to today's stdout: while the pipeline runs, kfp.local's own output is redirected.
    progress = Console(file=sys.stdout, highlight=False)
    started: list[bool] = []

    def report(event: Any) -> None:
        if not started:  # after the arguments were checked and the server answered
            started.append(True)
            progress.print(f"[bold]kfp-mlflow[/] {graph.name}, local run")
        _print_event(progress, event)

    if runner not in ("subprocess", "docker"):
        raise ConfigError(f"--runner: {runner!r} is not subprocess or docker")
    result = run_local(graph, arguments, settings, on_event=report, runner=runner)  # type: ignore[arg-type]
    console.print(f"MLflow UI: [link={result.tracking_uri}]{result.tracking_uri}[/]")
    result.raise_for_failure()
    if result.decision is not None:
        _print_summary(result.decision)
    console.print(f"Done in {result.seconds:.1f}s.")


def with_task_timeout(settings: Settings, seconds: float | None) -> Settings:
    """``settings`` with ``--task-timeout`` applied, when given."""
    return settings if seconds is None else settings.model_copy(update={"task_timeout": seconds})


def _arguments(**overrides: Any) -> dict[str, Any]:
    return {key: value for key, value in overrides.items() if value not in (None, [])}


def _pairs(pairs: list[str] | None) -> dict[str, Any]:
    """``name=value`` pairs; values are JSON when they parse as JSON, else text."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--arg: {pair!r} is not name=value", hint="e.g. --arg seed=7")
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values


def _print_event(out: Console, event: Any) -> None:
    if event.status == "RUNNING":
        return
    mark = "[green]✓[/]" if event.status == "SUCCEEDED" else "[red]✗[/]"
    out.print(f"  {mark} {event.task:<36} {event.seconds:6.1f}s")


def _print_summary(decision: Any) -> None:
    better = "lower" if decision.direction == "min" else "higher"
    table = Table(title=f"Candidates ({decision.metric}: {better} is better)")
    names = sorted({k for c in decision.candidates for k in c["metrics"]})
    table.add_column("candidate")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("gate")
    for candidate in decision.candidates:
        label = candidate["candidate"] + (" ★" if candidate["candidate"] == decision.winner else "")
        values = [f"{candidate['metrics'].get(n, float('nan')):.4g}" for n in names]
        table.add_row(label, *values, decision.rejected.get(candidate["candidate"], "passed"))
    console.print(table)
    console.print(f"Winner: [bold]{decision.winner or 'none'}[/]")
    console.print(f"Decision: {decision.reason}")
    if decision.registered_version:
        verdict = "[green]promoted to @champion[/]" if decision.promoted else "not promoted"
        console.print(
            f"Registered [bold]{decision.model_name}[/] version "
            f"{decision.registered_version}: {verdict} "
            f"(@champion is v{decision.champion_version})"
        )


@app.command("compile")
def compile_(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the IR YAML.")
    ] = Path("pipeline.yaml"),
    image: Annotated[str | None, typer.Option(help="Component image (pinned tag).")] = None,
    pipeline: PipelineRef = None,
    search_space: SearchSpaceFile = None,
    task_timeout: TaskTimeout = None,
) -> None:
    """Compile a pipeline (default: the training one) to KFP IR YAML for the Kubeflow UI."""
    from kfp_mlflow.dsl.compiling import compile_pipeline

    settings = with_task_timeout(get_settings(), task_timeout)
    if image:
        if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]:
            raise ConfigError(f"--image: {image!r} is not pinned", hint="give a version tag")
        settings = settings.model_copy(update={"image": image})
    path = compile_pipeline(
        output, settings, pipeline=pipeline, arguments=search_space_arguments(search_space)
    )
    console.print(f"Wrote {path} (image {settings.image})")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local MLflow server that `run` left running."""
    from kfp_mlflow.local.server import stop_server

    directory = get_settings().work_dir / "mlflow"
    stopped = stop_server(directory)
    if stopped.running:
        console.print(f"stopped the local MLflow server at {stopped.url}")
    elif stopped.stale:
        console.print(f"the local MLflow server at {stopped.url} had already exited")
    else:
        console.print("no local server was running")


@app.command("settings")
def show_settings() -> None:
    """Show the effective settings (secrets masked) and the variables that set them."""
    settings = get_settings()
    table = Table("variable", "value", "description")
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        variable = alias.choices[0] if alias is not None else f"KFP_MLFLOW_{name.upper()}"  # type: ignore[union-attr]
        value = getattr(settings, name)
        table.add_row(str(variable), json.dumps(value, default=str), info.description or "")
    console.print(table)
