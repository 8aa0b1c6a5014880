"""Get-or-create the KFP objects a run hangs from: experiment, pipeline, pipeline version.

Versions are named from the package version and the spec digest (see
:func:`kfp_mlflow.remote.package.version_name`): resubmitting unchanged code reuses the version,
and every changed spec gets its own, so a run always records exactly what it ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kfp_mlflow._version import __version__
from kfp_mlflow.remote.connection import KfpSession
from kfp_mlflow.remote.errors import KfpNotFoundError, KfpRejectedError, kfp_api_errors, translate
from kfp_mlflow.remote.package import PipelinePackage, version_name


@dataclass(frozen=True)
class PipelineVersionRef:
    """The pipeline version a run or schedule refers to."""

    pipeline_id: str
    pipeline_version_id: str
    pipeline_name: str
    version_name: str
    created: bool  # False when an identical spec was already uploaded


def name_filter(name: str) -> str:
    """A v2beta1 ``Filter`` (JSON) selecting objects whose display_name equals ``name``."""
    predicate = {"key": "display_name", "operation": "EQUALS", "string_value": name}
    return json.dumps({"predicates": [predicate]})


def list_all(call: Callable[..., Any], field: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paged v2beta1 list call."""
    token = ""
    while True:
        page = call(page_size=100, page_token=token, **kwargs)
        yield from getattr(page, field) or []
        token = page.next_page_token or ""
        if not token:
            return


def _named(items: Iterator[Any], name: str) -> list[Any]:
    # The server filter already matched; checking again guards servers that ignore a filter key.
    return [i for i in items if name in (i.display_name, getattr(i, "name", None))]


def find_experiment(session: KfpSession, name: str) -> Any | None:
    api = session.client.experiments
    ns = {"namespace": session.namespace} if session.namespace else {}
    with kfp_api_errors(session.host, f"look up KFP experiment {name!r}"):
        found = _named(
            list_all(
                api.experiment_service_list_experiments,
                "experiments",
                filter=name_filter(name),
                **ns,
            ),
            name,
        )
    return found[0] if found else None


def ensure_experiment(session: KfpSession, name: str, *, create: bool = True) -> Any:
    """The KFP experiment called ``name``, created when missing (unless ``create`` is False)."""
    from kfp_server_api import V2beta1Experiment

    experiment = find_experiment(session, name)
    if experiment is not None:
        return experiment
    if not create:
        raise KfpNotFoundError(
            f"no KFP experiment named {name!r}"
            + (f" in namespace {session.namespace}" if session.namespace else ""),
            hint="check --experiment / KFP_MLFLOW_KFP_EXPERIMENT",
        )
    body = V2beta1Experiment(
        display_name=name,
        description="Runs submitted by kfp-mlflow",
        namespace=session.namespace,
    )
    with kfp_api_errors(session.host, f"create KFP experiment {name!r}"):
        return session.client.experiments.experiment_service_create_experiment(body)


def find_pipeline(session: KfpSession, name: str) -> Any | None:
    api = session.client.pipelines
    ns = {"namespace": session.namespace} if session.namespace else {}
    with kfp_api_errors(session.host, f"look up KFP pipeline {name!r}"):
        found = _named(
            list_all(
                api.pipeline_service_list_pipelines, "pipelines", filter=name_filter(name), **ns
            ),
            name,
        )
    if len(found) > 1:
        raise KfpRejectedError(
            f"{len(found)} KFP pipelines are named {name!r}; names must be unique"
        )
    return found[0] if found else None


def find_version(session: KfpSession, pipeline_id: str, name: str) -> Any | None:
    api = session.client.pipelines
    with kfp_api_errors(session.host, f"look up pipeline version {name!r}"):
        found = _named(
            list_all(
                api.pipeline_service_list_pipeline_versions,
                "pipeline_versions",
                pipeline_id=pipeline_id,
                filter=name_filter(name),
            ),
            name,
        )
    return found[0] if found else None


def ensure_pipeline_version(session: KfpSession, package: PipelinePackage) -> PipelineVersionRef:
    """Upload ``package`` as a version of its pipeline unless that exact spec is already there."""
    from kfp_server_api import ApiException, V2beta1Pipeline

    name = package.name
    wanted = version_name(__version__, package.digest)
    pipeline = find_pipeline(session, name)
    if pipeline is None:
        # An empty pipeline, then the version under our name: uploading the package directly
        # would create a first version named after the pipeline, which resubmission can't match.
        body = V2beta1Pipeline(
            display_name=name,
            name=name,
            description=package.description,
            namespace=session.namespace,
        )
        with kfp_api_errors(session.host, f"create KFP pipeline {name!r}"):
            pipeline = session.client.pipelines.pipeline_service_create_pipeline(body)
    existing = find_version(session, pipeline.pipeline_id, wanted)
    if existing is not None:
        return PipelineVersionRef(
            pipeline.pipeline_id, existing.pipeline_version_id, name, wanted, created=False
        )
    try:
        version = session.client.pipeline_uploads.upload_pipeline_version(
            str(package.path),
            name=wanted,
            pipelineid=pipeline.pipeline_id,
            description=f"kfp-mlflow {__version__}, spec sha256:{package.digest}",
        )
    except ApiException as error:
        if error.status != 409:
            raise translate(error, session.host, f"upload pipeline version {wanted!r}") from error
        # 409: a concurrent submission of the same spec uploaded it first; use theirs.
        version = find_version(session, pipeline.pipeline_id, wanted)
        if version is None:
            raise KfpRejectedError(
                f"pipeline version {wanted!r} exists but cannot be found"
            ) from error
        return PipelineVersionRef(
            pipeline.pipeline_id, version.pipeline_version_id, name, wanted, created=False
        )
    except Exception as error:
        raise translate(error, session.host, f"upload pipeline version {wanted!r}") from error
    return PipelineVersionRef(
        pipeline.pipeline_id, version.pipeline_version_id, name, wanted, created=True
    )
