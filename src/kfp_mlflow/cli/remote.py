"""Commands: submit, schedule {create,list,pause,resume,delete} — against a running KFP.

Thin: options in, :mod:`kfp_mlflow.remote` does the work, results out. Errors are
``KfpMlflowError``s, which ``kfp_mlflow.cli.main`` prints as one line with a non-zero exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kfp_mlflow.cli._app import app
from kfp_mlflow.cli.local import TaskTimeout, with_task_timeout
from kfp_mlflow.core.exceptions import ConfigError

schedule_app = typer.Typer(
    name="schedule",
    help="Recurring runs on KFP (cron) for retraining: create, list, pause, resume, delete.",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")

_CONN = "KFP connection (default: KFP_MLFLOW_KFP_* settings)"
_RUN = "Pipeline and run"

Host = Annotated[str | None, typer.Option("--host", help="KFP API URL.", rich_help_panel=_CONN)]
Namespace = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Profile namespace (multi-user).", rich_help_panel=_CONN
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token. Prefer KFP_MLFLOW_KFP_TOKEN: flags show in process lists.",
        rich_help_panel=_CONN,
        show_default=False,
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option("--token-file", help="File holding the bearer token.", rich_help_panel=_CONN),
]
CaFile = Annotated[
    Path | None, typer.Option("--ca-file", help="CA bundle for TLS.", rich_help_panel=_CONN)
]
UiUrl = Annotated[
    str | None,
    typer.Option(
        "--ui-url", help="KFP UI base URL for links (default: host).", rich_help_panel=_CONN
    ),
]
Package = Annotated[
    Path | None,
    typer.Option(
        "--package",
        help="Compiled pipeline YAML; default: compile the training pipeline now.",
        rich_help_panel=_RUN,
    ),
]
Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="Pipeline argument key=value (repeat). Lists/dicts as JSON.",
        rich_help_panel=_RUN,
    ),
]
Experiment = Annotated[
    str | None,
    typer.Option(
        "--experiment", "-e", help="KFP experiment (created if missing).", rich_help_panel=_RUN
    ),
]
MlflowExperiment = Annotated[
    str | None,
    typer.Option(
        "--mlflow-experiment",
        help="MLflow experiment for this run's tracking.",
        rich_help_panel=_RUN,
    ),
]
MlflowPlugin = Annotated[
    bool | None,
    typer.Option(
        "--mlflow-plugin/--no-mlflow-plugin",
        help="KFP's MLflow integration is on: send the experiment as plugins_input "
        "(default: KFP_MLFLOW_KFP_MLFLOW_PLUGIN).",
        rich_help_panel=_RUN,
        show_default=False,
    ),
]


def _connection(**options: Any) -> Any:
    from kfp_mlflow.remote import KfpConnection

    return KfpConnection.from_settings(**options)


@app.command()
def submit(
    *,
    package: Package = None,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            help="A pipeline of your own to compile and submit: file.py:name or module:name.",
        ),
    ] = None,
    param: Params = None,
    search_space: Annotated[
        Path | None,
        typer.Option(
            "--search-space",
            help="YAML file: candidates (lists are grids), metric, thresholds, min_improvement; "
            "--param wins.",
            rich_help_panel=_RUN,
        ),
    ] = None,
    experiment: Experiment = None,
    run_name: Annotated[str | None, typer.Option("--run-name", rich_help_panel=_RUN)] = None,
    mlflow_experiment: MlflowExperiment = None,
    mlflow_plugin: MlflowPlugin = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the run to its end; exit non-zero if it fails.")
    ] = False,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.01, help="Seconds between polls with --wait.")
    ] = 5.0,
    host: Host = None,
    namespace: Namespace = None,
    token: Token = None,
    token_file: TokenFile = None,
    ca_file: CaFile = None,
    ui_url: UiUrl = None,
    task_timeout: TaskTimeout = None,
) -> None:
    """Submit a pipeline run to Kubeflow Pipelines and print its URL (optionally --wait)."""
    from kfp_mlflow.core.settings import get_settings
    from kfp_mlflow.remote import submit_pipeline

    out = Console(highlight=False, soft_wrap=True)
    connection = _connection(
        host=host,
        namespace=namespace,
        token=token,
        token_file=token_file,
        ca_file=ca_file,
        ui_url=ui_url,
    )
    result = submit_pipeline(
        connection,
        package=package,
        pipeline=pipeline,
        params=_with_search_space(search_space, list(param or [])),
        experiment=experiment,
        run_name=run_name,
        mlflow_experiment=mlflow_experiment,
        mlflow_plugin=mlflow_plugin,
        settings=with_task_timeout(get_settings(), task_timeout),
    )
    verb = "uploaded" if result.version_created else "reused"
    out.print(
        f"pipeline version {result.version_name} ({verb}); experiment {result.experiment_name}"
    )
    out.print(f"run {result.run_name} ({result.run_id}): {result.run_url}")
    if result.mlflow_url:
        out.print(f"mlflow: {result.mlflow_url}")
    elif result.mlflow_experiment:
        out.print(f"mlflow experiment: {result.mlflow_experiment}")
    if wait:
        _follow(result.run_id, connection, poll_interval, out)


def _with_search_space(path: Path | None, params: list[str]) -> list[str] | dict[str, Any]:
    """``--param`` pairs, over the arguments a ``--search-space`` file sets (checked on load)."""
    if path is None:
        return params
    from kfp_mlflow.steps.search_space import load_search_space

    arguments: dict[str, Any] = load_search_space(path).pipeline_arguments()
    for pair in params:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param expects key=value, got {pair!r}")
        arguments[name.strip()] = value
    return arguments


def _follow(run_id: str, connection: Any, poll_interval: float, out: Console) -> None:
    from kfp_mlflow.remote import follow_run
    from kfp_mlflow.remote.display import RunProgress

    with RunProgress(out) as progress:
        status = follow_run(
            run_id,
            connection,
            on_update=progress.update,
            on_retry=progress.retrying,
            poll_interval=poll_interval,
        )
    out.print(f"[green]run {status.run_name} {status.state.lower()}[/]: {status.url}")
    if status.mlflow_url:
        out.print(f"mlflow: {status.mlflow_url}")


@schedule_app.command("create")
def schedule_create(
    *,
    name: Annotated[str, typer.Option("--name", help="Schedule name (unique per experiment).")],
    cron: Annotated[
        str,
        typer.Option("--cron", help="When: 5-field cron (minute hour day month weekday), UTC."),
    ],
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", min=1, max=10, help="Runs allowed at once.")
    ] = 1,
    paused: Annotated[bool, typer.Option("--paused", help="Create it disabled.")] = False,
    package: Package = None,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            help="Schedule another pipeline: file.py:name or module:name "
            "(e.g. kfp_mlflow.pipelines.batch_predict:build_batch_predict_pipeline).",
        ),
    ] = None,
    param: Params = None,
    experiment: Experiment = None,
    mlflow_experiment: MlflowExperiment = None,
    mlflow_plugin: MlflowPlugin = None,
    host: Host = None,
    namespace: Namespace = None,
    token: Token = None,
    token_file: TokenFile = None,
    ca_file: CaFile = None,
    ui_url: UiUrl = None,
) -> None:
    """Create a recurring run (no catch-up) of the pipeline."""
    from kfp_mlflow.remote import create_schedule

    info = create_schedule(
        _connection(
            host=host,
            namespace=namespace,
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            ui_url=ui_url,
        ),
        name=name,
        cron=cron,
        package=package,
        pipeline=pipeline,
        params=list(param or []),
        experiment=experiment,
        max_concurrency=max_concurrency,
        enabled=not paused,
        mlflow_experiment=mlflow_experiment,
        mlflow_plugin=mlflow_plugin,
    )
    state = "enabled" if info.enabled else "paused"
    Console(highlight=False).print(
        f"schedule {info.name} ({info.schedule_id}) {state}, cron '{info.cron}': {info.url}"
    )


@schedule_app.command("list")
def schedule_list(
    *,
    experiment: Experiment = None,
    host: Host = None,
    namespace: Namespace = None,
    token: Token = None,
    token_file: TokenFile = None,
    ca_file: CaFile = None,
    ui_url: UiUrl = None,
) -> None:
    """List recurring runs."""
    from kfp_mlflow.remote import list_schedules

    items = list_schedules(
        _connection(
            host=host,
            namespace=namespace,
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            ui_url=ui_url,
        ),
        experiment=experiment,
    )
    table = Table("id", "name", "cron", "state", "max", "created")
    for i in items:
        table.add_row(
            i.schedule_id,
            i.name,
            i.cron or "",
            "enabled" if i.enabled else "paused",
            str(i.max_concurrency),
            f"{i.created_at:%Y-%m-%d %H:%M}" if i.created_at else "",
        )
    Console(width=160).print(table if items else "no schedules")


ScheduleArg = Annotated[str, typer.Argument(help="Schedule id or name.")]


def _toggle_command(action: str, summary: str) -> Any:
    """`schedule pause` and `schedule resume`: one command body, two names."""

    def command(
        *,
        schedule: ScheduleArg,
        host: Host = None,
        namespace: Namespace = None,
        token: Token = None,
        token_file: TokenFile = None,
        ca_file: CaFile = None,
        ui_url: UiUrl = None,
    ) -> None:
        from kfp_mlflow.remote import pause_schedule, resume_schedule

        toggle = pause_schedule if action == "pause" else resume_schedule
        connection = _connection(
            host=host,
            namespace=namespace,
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            ui_url=ui_url,
        )
        info = toggle(schedule, connection)
        state = "enabled" if info.enabled else "paused"
        Console(highlight=False).print(f"schedule {info.name} ({info.schedule_id}) {state}")

    command.__doc__ = summary
    return command


schedule_app.command("pause")(_toggle_command("pause", "Pause (disable) a schedule."))
schedule_app.command("resume")(
    _toggle_command("resume", "Resume (enable) a paused schedule; missed slots are not replayed.")
)


@schedule_app.command("delete")
def schedule_delete(
    *,
    schedule: ScheduleArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    host: Host = None,
    namespace: Namespace = None,
    token: Token = None,
    token_file: TokenFile = None,
    ca_file: CaFile = None,
    ui_url: UiUrl = None,
) -> None:
    """Delete a schedule (runs it started are kept)."""
    from kfp_mlflow.remote import delete_schedule

    if not yes:
        typer.confirm(f"Delete schedule {schedule}?", abort=True)
    delete_schedule(
        schedule,
        _connection(
            host=host,
            namespace=namespace,
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            ui_url=ui_url,
        ),
    )
    Console(highlight=False).print(f"schedule {schedule} deleted")
