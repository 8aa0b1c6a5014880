"""Recurring runs (KFP "recurring runs", formerly jobs) for scheduled retraining.

A schedule points at a pipeline *version* (uploaded as by submit), not an inline spec, so what a
scheduled run executes is visible and auditable in the KFP UI. Catch-up is off: after a pause or
an outage, a retraining schedule runs once, not once per missed slot.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.remote.connection import KfpConnection, KfpSession
from kfp_mlflow.remote.errors import KfpNotFoundError, KfpRejectedError, kfp_api_errors
from kfp_mlflow.remote.links import kfp_schedule_url
from kfp_mlflow.remote.submit import load_package, mlflow_run_settings, session_for
from kfp_mlflow.remote.versions import (
    ensure_experiment,
    ensure_pipeline_version,
    find_experiment,
    list_all,
    name_filter,
)
from kfp_mlflow.steps.validation import check_arguments, metric_constants

# KFP's API server refuses max_concurrency outside 1..10.
MAX_CONCURRENCY_RANGE = (1, 10)


@dataclass(frozen=True)
class ScheduleInfo:
    """A recurring run as the KFP API reports it."""

    schedule_id: str
    name: str
    cron: str | None
    enabled: bool
    max_concurrency: int
    no_catchup: bool
    experiment_id: str | None
    pipeline_version_id: str | None
    url: str
    created_at: datetime | None = None


def normalize_cron(expression: str) -> str:
    """A KFP cron expression: six fields, seconds first.

    KFP reads the first field as *seconds*, so a standard five-field expression such as
    ``0 3 * * *`` would silently run at second 0 of minute 3 of every hour. Five fields get ``0``
    seconds prepended; anything but six fields (or an ``@every``/``@daily`` descriptor) is refused.
    """
    fields = expression.split()
    if expression.strip().startswith("@") and len(fields) in (1, 2):
        return expression.strip()
    if len(fields) == 5:
        return "0 " + " ".join(fields)
    if len(fields) == 6:
        return " ".join(fields)
    raise ConfigError(
        f"cron expression {expression!r} has {len(fields)} fields",
        hint="use five fields (minute hour day month weekday), e.g. '0 3 * * *' for 03:00 daily",
    )


def schedule_info(session: KfpSession, item: Any) -> ScheduleInfo:
    trigger = getattr(item, "trigger", None)
    cron = getattr(getattr(trigger, "cron_schedule", None), "cron", None)
    periodic = getattr(trigger, "periodic_schedule", None)
    if cron is None and periodic is not None:
        cron = f"every {periodic.interval_second}s"
    ref = getattr(item, "pipeline_version_reference", None)
    status = str(getattr(item, "status", "") or "")
    mode = str(getattr(item, "mode", "") or "")
    return ScheduleInfo(
        schedule_id=item.recurring_run_id,
        name=item.display_name,
        cron=cron,
        enabled=(status == "ENABLED") if status.endswith("ABLED") else (mode == "ENABLE"),
        max_concurrency=int(item.max_concurrency or 1),
        no_catchup=bool(item.no_catchup),
        experiment_id=item.experiment_id,
        pipeline_version_id=getattr(ref, "pipeline_version_id", None) or item.pipeline_version_id,
        url=kfp_schedule_url(session.ui_url, item.recurring_run_id),
        created_at=item.created_at,
    )


def create_schedule(
    connection: KfpConnection | KfpSession | None = None,
    *,
    name: str,
    cron: str,
    package: Path | None = None,
    pipeline: Any = None,
    params: list[str] | dict[str, Any] | None = None,
    experiment: str | None = None,
    max_concurrency: int = 1,
    enabled: bool = True,
    mlflow_experiment: str | None = None,
    mlflow_plugin: bool | None = None,
    service_account: str | None = None,
    settings: Settings | None = None,
) -> ScheduleInfo:
    """Create recurring run ``name`` (unique in its experiment) with catch-up off, of ``package``
    or ``pipeline`` (a pipeline or a ``file.py:name`` reference; default: the training one)."""
    from kfp_server_api import (
        RecurringRunMode,
        V2beta1CronSchedule,
        V2beta1PipelineVersionReference,
        V2beta1RecurringRun,
        V2beta1RuntimeConfig,
        V2beta1Trigger,
    )

    settings = settings or get_settings()
    low, high = MAX_CONCURRENCY_RANGE
    if not low <= max_concurrency <= high:
        raise ConfigError(f"max_concurrency must be in {low}..{high}, got {max_concurrency}")
    kfp_cron = normalize_cron(cron)
    use_plugin = settings.kfp_mlflow_plugin if mlflow_plugin is None else mlflow_plugin
    with tempfile.TemporaryDirectory(prefix="kfp-mlflow-schedule-") as tmp:
        pkg = load_package(package, settings, Path(tmp), pipeline)
        arguments, plugins_input = mlflow_run_settings(
            pkg, pkg.parse_arguments(params or []), mlflow_experiment, use_plugin
        )
        # What submit checks, checked here too: a schedule fails every night otherwise.
        check_arguments(
            {
                # Custom metrics given to evaluate as constants, unless they are a parameter.
                "extra_metrics": metric_constants(pkg.spec),
                **{k: v.get("defaultValue") for k, v in pkg.parameters.items()},
                **arguments,
            },
            import_metrics=False,
        )
        session = session_for(connection, settings)
        kfp_experiment = ensure_experiment(session, experiment or settings.kfp_experiment)
        if _find(session, name, kfp_experiment.experiment_id):
            raise KfpRejectedError(
                f"a schedule named {name!r} already exists in experiment "
                f"{kfp_experiment.display_name!r}",
                hint="delete it first (`kfp-mlflow schedule delete`) or choose another --name",
            )
        ref = ensure_pipeline_version(session, pkg)
    body = V2beta1RecurringRun(
        display_name=name,
        description=f"Scheduled {pkg.name} ({ref.version_name}) by kfp-mlflow",
        experiment_id=kfp_experiment.experiment_id,
        pipeline_version_reference=V2beta1PipelineVersionReference(
            pipeline_id=ref.pipeline_id, pipeline_version_id=ref.pipeline_version_id
        ),
        runtime_config=V2beta1RuntimeConfig(parameters=arguments),
        trigger=V2beta1Trigger(cron_schedule=V2beta1CronSchedule(cron=kfp_cron)),
        max_concurrency=str(max_concurrency),  # int64 travels as a JSON string
        no_catchup=True,
        mode=RecurringRunMode.ENABLE if enabled else RecurringRunMode.DISABLE,
        service_account=service_account or settings.kfp_service_account,
        namespace=session.namespace,
        plugins_input=plugins_input,
    )
    with kfp_api_errors(session.host, f"create schedule {name!r}"):
        created = session.client.recurring_runs.recurring_run_service_create_recurring_run(body)
    return schedule_info(session, created)


def list_schedules(
    connection: KfpConnection | KfpSession | None = None,
    *,
    experiment: str | None = None,
    settings: Settings | None = None,
) -> list[ScheduleInfo]:
    """Every recurring run, or those of KFP experiment ``experiment``."""
    session = session_for(connection, settings)
    scope: dict[str, Any] = {}
    if experiment:
        found = find_experiment(session, experiment)
        if found is None:
            raise KfpNotFoundError(f"no KFP experiment named {experiment!r}")
        scope["experiment_id"] = found.experiment_id
    elif session.namespace:
        scope["namespace"] = session.namespace
    api = session.client.recurring_runs
    with kfp_api_errors(session.host, "list schedules"):
        items = list(
            list_all(api.recurring_run_service_list_recurring_runs, "recurring_runs", **scope)
        )
    return [schedule_info(session, i) for i in items]


def _find(session: KfpSession, name: str, experiment_id: str | None = None) -> list[Any]:
    api = session.client.recurring_runs
    scope: dict[str, Any] = {"experiment_id": experiment_id} if experiment_id else {}
    if not experiment_id and session.namespace:
        scope["namespace"] = session.namespace
    with kfp_api_errors(session.host, f"look up schedule {name!r}"):
        return [
            i
            for i in list_all(
                api.recurring_run_service_list_recurring_runs,
                "recurring_runs",
                filter=name_filter(name),
                **scope,
            )
            if i.display_name == name
        ]


def resolve_schedule(session: KfpSession, id_or_name: str) -> str:
    """The recurring-run id for an id or a (unique) display name."""
    matches = _find(session, id_or_name)
    if len(matches) > 1:
        raise KfpRejectedError(
            f"{len(matches)} schedules are named {id_or_name!r}",
            hint="name it by id: see `kfp-mlflow schedule list`",
        )
    if matches:
        return str(matches[0].recurring_run_id)
    return id_or_name  # not a name: taken as an id; the API says 404 if it isn't one either


def _act(
    verb: str,
    method: str,
    schedule: str,
    connection: KfpConnection | KfpSession | None,
    settings: Settings | None,
) -> ScheduleInfo | None:
    session = session_for(connection, settings)
    schedule_id = resolve_schedule(session, schedule)
    api = session.client.recurring_runs
    with kfp_api_errors(session.host, f"{verb} schedule {schedule!r}"):
        getattr(api, f"recurring_run_service_{method}_recurring_run")(schedule_id)
        if method == "delete":
            return None
        return schedule_info(session, api.recurring_run_service_get_recurring_run(schedule_id))


def pause_schedule(
    schedule: str,
    connection: KfpConnection | KfpSession | None = None,
    *,
    settings: Settings | None = None,
) -> ScheduleInfo:
    """Disable a schedule (by id or name); its runs in flight go on."""
    info = _act("pause", "disable", schedule, connection, settings)
    assert info is not None
    return info


def resume_schedule(
    schedule: str,
    connection: KfpConnection | KfpSession | None = None,
    *,
    settings: Settings | None = None,
) -> ScheduleInfo:
    """Enable a paused schedule; with catch-up off it does not replay missed slots."""
    info = _act("resume", "enable", schedule, connection, settings)
    assert info is not None
    return info


def delete_schedule(
    schedule: str,
    connection: KfpConnection | KfpSession | None = None,
    *,
    settings: Settings | None = None,
) -> None:
    """Delete a schedule (by id or name). Runs it already started are kept."""
    _act("delete", "delete", schedule, connection, settings)
