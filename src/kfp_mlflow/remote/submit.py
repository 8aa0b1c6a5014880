"""Submit a pipeline run: package → experiment → pipeline version → run, linked to MLflow."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.dsl.ir_checks import check_pipeline_spec
from kfp_mlflow.remote.connection import KfpConnection, KfpSession
from kfp_mlflow.remote.errors import kfp_api_errors
from kfp_mlflow.remote.links import kfp_run_url, mlflow_runs_search_url
from kfp_mlflow.remote.mlflow_link import find_mlflow_experiment_id, run_description
from kfp_mlflow.remote.package import PipelinePackage
from kfp_mlflow.remote.versions import ensure_experiment, ensure_pipeline_version
from kfp_mlflow.steps.validation import check_arguments, metric_constants

# The training pipeline's parameter naming the MLflow experiment
# (src/kfp_mlflow/pipelines/training.py).
EXPERIMENT_PARAMETER = "experiment_name"


@dataclass(frozen=True)
class SubmitResult:
    """What was submitted and where to look at it."""

    run_id: str
    run_name: str
    run_url: str
    experiment_id: str
    experiment_name: str
    pipeline_id: str
    pipeline_version_id: str
    version_name: str
    version_created: bool
    arguments: dict[str, Any] = field(default_factory=dict)
    mlflow_experiment: str | None = None
    mlflow_url: str | None = None


def session_for(
    connection: KfpConnection | KfpSession | None, settings: Settings | None = None
) -> KfpSession:
    """An open session from whatever the caller has (nothing: the settings' connection)."""
    if isinstance(connection, KfpSession):
        return connection
    return (connection or KfpConnection.from_settings(settings)).open()


def load_package(
    package: Path | None, settings: Settings, workdir: Path, pipeline: Any = None
) -> PipelinePackage:
    """The given compiled package, or ``pipeline`` (default: the training pipeline) compiled
    now into ``workdir``."""
    if package is not None:
        loaded = PipelinePackage.load(Path(package))
        check_pipeline_spec(loaded.spec)
        return loaded
    from kfp_mlflow.dsl.compiling import compile_pipeline

    return PipelinePackage.load(
        compile_pipeline(workdir / "pipeline.yaml", settings, pipeline=pipeline)
    )


def mlflow_run_settings(
    package: PipelinePackage,
    arguments: dict[str, Any],
    mlflow_experiment: str | None,
    use_plugin: bool,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(arguments, plugins_input) carrying the chosen MLflow experiment.

    With KFP's MLflow integration on, the experiment goes in ``plugins_input.mlflow`` (the
    server creates the parent run there and injects its ids into every task); the pipeline's own
    ``experiment_name`` parameter is set to the same name, when declared, so that code that logs
    without the injected ids still lands in the same experiment.
    """
    arguments = dict(arguments)
    if not mlflow_experiment:
        return arguments, None
    if EXPERIMENT_PARAMETER in package.parameters:
        arguments[EXPERIMENT_PARAMETER] = mlflow_experiment
    elif not use_plugin:
        from kfp_mlflow.core.exceptions import ConfigError

        raise ConfigError(
            f"--mlflow-experiment needs the pipeline parameter {EXPERIMENT_PARAMETER!r}, which "
            f"{package.name} does not declare",
            hint="enable KFP's MLflow integration (KFP_MLFLOW_KFP_MLFLOW_PLUGIN=true) or add it",
        )
    plugins = {"mlflow": {"experiment_name": mlflow_experiment}} if use_plugin else None
    return arguments, plugins


def submit_pipeline(
    connection: KfpConnection | KfpSession | None = None,
    *,
    package: Path | None = None,
    pipeline: Any = None,
    params: list[str] | dict[str, Any] | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    mlflow_experiment: str | None = None,
    mlflow_plugin: bool | None = None,
    service_account: str | None = None,
    settings: Settings | None = None,
) -> SubmitResult:
    """Compile ``pipeline`` (a pipeline or a ``file.py:name`` reference; default: the training
    pipeline) or take ``package``, upload if new, and start a run. Returns at once."""
    from kfp_server_api import V2beta1PipelineVersionReference, V2beta1Run, V2beta1RuntimeConfig

    settings = settings or get_settings()
    use_plugin = settings.kfp_mlflow_plugin if mlflow_plugin is None else mlflow_plugin
    with tempfile.TemporaryDirectory(prefix="kfp-mlflow-submit-") as tmp:
        pkg = load_package(package, settings, Path(tmp), pipeline)
        # Parse and check before connecting: a typo in --param fails without touching the
        # cluster.
        arguments, plugins_input = mlflow_run_settings(
            pkg, pkg.parse_arguments(params or []), mlflow_experiment, use_plugin
        )
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
        experiment_name = experiment or settings.kfp_experiment
        kfp_experiment = ensure_experiment(session, experiment_name)
        ref = ensure_pipeline_version(session, pkg)

    mlflow_name = (
        mlflow_experiment
        or arguments.get(EXPERIMENT_PARAMETER)
        or _default(pkg, EXPERIMENT_PARAMETER)
        or settings.experiment_name
    )
    mlflow_id = find_mlflow_experiment_id(settings, mlflow_name) if mlflow_name else None
    description = (
        run_description(settings.mlflow_ui_url, mlflow_name, mlflow_id) if mlflow_name else None
    )
    name = run_name or f"{pkg.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    body = V2beta1Run(
        experiment_id=kfp_experiment.experiment_id,
        display_name=name,
        description=description,
        pipeline_version_reference=V2beta1PipelineVersionReference(
            pipeline_id=ref.pipeline_id, pipeline_version_id=ref.pipeline_version_id
        ),
        runtime_config=V2beta1RuntimeConfig(parameters=arguments),
        service_account=service_account or settings.kfp_service_account,
        # The SDK's run_pipeline() has no way to pass this; the generated model does.
        plugins_input=plugins_input,
    )
    with kfp_api_errors(session.host, f"create a run of {pkg.name}"):
        run = session.client.runs.run_service_create_run(body)
    mlflow_url = (
        mlflow_runs_search_url(settings.mlflow_ui_url, mlflow_id, run.run_id)
        if settings.mlflow_ui_url and mlflow_id
        else None
    )
    return SubmitResult(
        run_id=run.run_id,
        run_name=name,
        run_url=kfp_run_url(session.ui_url, run.run_id),
        experiment_id=kfp_experiment.experiment_id,
        experiment_name=experiment_name,
        pipeline_id=ref.pipeline_id,
        pipeline_version_id=ref.pipeline_version_id,
        version_name=ref.version_name,
        version_created=ref.created,
        arguments=arguments,
        mlflow_experiment=mlflow_name,
        mlflow_url=mlflow_url,
    )


def _default(package: PipelinePackage, name: str) -> Any:
    return package.parameters.get(name, {}).get("defaultValue")
