"""Golden files: the committed Pipeline/PipelineVersion equal a fresh render.

Refresh them with `make manifests` (or KFP_MLFLOW_UPDATE_GOLDEN=1 pytest tests/manifests).
"""

from __future__ import annotations

import re

import pytest

from kfp_mlflow.cluster.pipeline_resources import (
    clean_settings,
    PIPELINE_FILE,
    PIPELINE_VERSION_FILE,
    dump_resource,
    render_pipeline_resources,
    spec_digest,
    version_name,
)
from tests.manifests.conftest import MANIFESTS, UPDATE_GOLDEN
from tests.support.golden import same_ir

GOLDEN_DIR = MANIFESTS / "pipelines" / "base"


@pytest.fixture(scope="module")
def fresh() -> list[dict]:
    return render_pipeline_resources()


def test_golden_files_match_a_fresh_render(fresh: list[dict]) -> None:
    stale = []
    for filename, resource in zip((PIPELINE_FILE, PIPELINE_VERSION_FILE), fresh, strict=True):
        path = GOLDEN_DIR / filename
        text = dump_resource(resource)
        if UPDATE_GOLDEN:
            path.write_text(text)
        elif not path.exists() or not same_ir(path.read_text(), text):
            stale.append(str(path.relative_to(MANIFESTS.parent)))
    assert not stale, f"stale golden files {stale}: run `make manifests` and commit them"


def test_version_name_is_a_content_digest(fresh: list[dict]) -> None:
    pipeline, version = fresh
    spec = version["spec"]
    digest = spec_digest(spec["pipelineSpec"], spec["platformSpec"])
    assert version["metadata"]["name"] == version_name(pipeline["metadata"]["name"], digest)
    assert spec["pipelineName"] == pipeline["metadata"]["name"]
    # A DNS-1123 subdomain, as the API server's webhook requires.
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", version["metadata"]["name"])
    assert len(version["metadata"]["name"]) <= 63


def test_same_code_same_name_and_any_change_a_new_one(fresh: list[dict]) -> None:
    from kfp_mlflow.cluster.pipeline_resources import clean_settings

    assert render_pipeline_resources()[1]["metadata"] == fresh[1]["metadata"]
    changed = clean_settings().model_copy(update={"image": "example.org/other:1.2.3"})
    changed_name = render_pipeline_resources(changed)[1]["metadata"]["name"]
    assert changed_name != fresh[1]["metadata"]["name"]


def test_render_ignores_the_environment(monkeypatch: pytest.MonkeyPatch, fresh: list) -> None:
    monkeypatch.setenv("KFP_MLFLOW_MODEL_NAME", "from-the-environment")
    monkeypatch.setenv("KFP_MLFLOW_IMAGE", "example.org/leak:9.9.9")
    assert render_pipeline_resources() == fresh


def test_committed_image_is_the_release_tag(fresh: list[dict]) -> None:
    from kfp_mlflow._version import __version__

    executors = fresh[1]["spec"]["pipelineSpec"]["deploymentSpec"]["executors"]
    images = {executor["container"]["image"] for executor in executors.values()}
    assert images == {f"ghcr.io/kfp-mlflow/kfp-mlflow:{__version__}"}


def test_submit_and_render_name_the_same_code_alike(tmp_path):
    """One digest for both paths: a version uploaded by `submit` and one synced by GitOps
    from the same code carry the same digest."""
    from kfp_mlflow.dsl.compiling import compile_pipeline
    from kfp_mlflow.remote.package import PipelinePackage

    package = PipelinePackage.load(compile_pipeline(tmp_path / "p.yaml", clean_settings()))
    resources = render_pipeline_resources(clean_settings())
    version = next(r for r in resources if r["kind"] == "PipelineVersion")
    assert version["metadata"]["name"].endswith("-" + package.digest[:12])
