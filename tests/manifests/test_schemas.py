"""Every rendered object validates strictly: built-in kinds against the Kubernetes schemas of the
kind node's version, custom resources against their (vendored) CRD schemas, and the
PipelineVersion's spec as the protobuf KFP parses it into."""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from google.protobuf import json_format

from tests.manifests.conftest import SCHEMAS

CUSTOM_SCHEMAS = {
    ("pipelines.kubeflow.org/v2beta1", "Pipeline"): "pipelines.kubeflow.org_pipelines.yaml",
    (
        "pipelines.kubeflow.org/v2beta1",
        "PipelineVersion",
    ): "pipelines.kubeflow.org_pipelineversions.yaml",
    ("argoproj.io/v1alpha1", "Application"): "argoproj.io_applications.yaml",
}


def _custom_schema(obj: dict[str, Any]) -> dict[str, Any] | None:
    filename = CUSTOM_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
    return yaml.safe_load((SCHEMAS / filename).read_text()) if filename else None


def test_builtin_objects_validate_strictly(all_objects: list, kubernetes_version: str) -> None:
    failures = []
    checked = 0
    for source, obj in all_objects:
        if _custom_schema(obj) is not None:
            continue
        try:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{source}: {obj['kind']}/{obj['metadata']['name']}: {error}")
    assert not failures, "\n".join(failures)
    assert checked >= 15


def test_an_unknown_field_is_rejected(kubernetes_version: str) -> None:
    """Guard: strict mode really is strict (a typo'd field must fail)."""
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {},
        "dta": {},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_version, strict=True)


def test_custom_resources_match_their_crd_schemas(all_objects: list) -> None:
    kinds = set()
    for source, obj in all_objects:
        schema = _custom_schema(obj)
        if schema is None:
            continue
        jsonschema.validate(obj, schema)
        kinds.add(obj["kind"])
        assert obj["metadata"]["name"], source
    assert kinds == {"Pipeline", "PipelineVersion", "Application"}


def test_compiler_output_would_be_rejected_without_our_fix() -> None:
    """The kfp compiler writes Pipeline.spec.displayName, which the 2.17 CRD does not have."""
    schema = yaml.safe_load((SCHEMAS / CUSTOM_SCHEMAS[next(iter(CUSTOM_SCHEMAS))]).read_text())
    raw = {
        "apiVersion": "pipelines.kubeflow.org/v2beta1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": {"displayName": "p"},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, schema)


def test_pipeline_version_spec_parses_strictly_as_protobuf(all_objects: list) -> None:
    from kfp.pipeline_spec import pipeline_spec_pb2

    versions = [obj for _, obj in all_objects if obj["kind"] == "PipelineVersion"]
    assert len(versions) == 1
    spec = versions[0]["spec"]
    pipeline_spec = json_format.ParseDict(spec["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    assert pipeline_spec.pipeline_info.name == spec["pipelineName"]
    platform_spec = json_format.ParseDict(spec["platformSpec"], pipeline_spec_pb2.PlatformSpec())
    assert "kubernetes" in platform_spec.platforms
