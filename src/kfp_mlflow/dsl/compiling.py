"""Compile the training pipeline to KFP IR YAML (what the Kubeflow UI and `kfp.Client` accept)."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.dsl.ir_checks import check_pipeline_spec

# kfp writes a comment header listing inputs with their defaults, e.g.
# "#    candidates: list [Default: [{...}]]", where dict keys come out in protobuf map order,
# which changes with the process's hash seed. The spec itself is sorted.
_DEFAULT_COMMENT = re.compile(r"^(#\s+\w+: \w+ \[Default: )(.*)(\])$")


def spec_digest(pipeline_spec: dict[str, Any], platform_spec: dict[str, Any] | None = None) -> str:
    """SHA-256 of what a pipeline version runs, layout and key order ignored.

    The one digest behind version names: `submit` (KFP API) and `render` (PipelineVersion
    resources) name the same code alike.
    """
    # The SDK patch release that compiled it is not part of what runs: the same IR from kfp
    # 2.17.0 and 2.17.3 is one version.
    runs = {key: value for key, value in pipeline_spec.items() if key != "sdkVersion"}
    canonical = json.dumps(
        {"pipelineSpec": runs, "platformSpec": platform_spec or {}},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def compile_pipeline(
    output: Path,
    settings: Settings | None = None,
    pipeline: Any = None,
    arguments: dict[str, Any] | None = None,
) -> Path:
    """Write ``pipeline`` (a pipeline, a ``file.py:name`` / ``module:name`` reference, or None
    for the training pipeline) as IR YAML to ``output``; its defaults are checked first.
    ``arguments`` replace parameter defaults in the compiled pipeline (e.g. a search space)."""
    from kfp import compiler

    from kfp_mlflow.dsl.pipeline_loading import load_pipeline, merged_arguments
    from kfp_mlflow.steps.validation import check_arguments

    settings = settings or get_settings()
    if pipeline is None or isinstance(pipeline, str):
        pipeline = load_pipeline(pipeline, settings)
    # The functions of custom metrics live in the task image, maybe not here: not imported.
    check_arguments(merged_arguments(pipeline, arguments or {}), import_metrics=False)
    output.parent.mkdir(parents=True, exist_ok=True)
    with task_deadlines(pipeline, settings.task_timeout):
        compiler.Compiler().compile(pipeline, str(output), pipeline_parameters=arguments or None)
    text = stable_header(output.read_text())
    try:
        check_pipeline_spec(next(yaml.safe_load_all(text)))
    except ConfigError:
        output.unlink()  # IR the backend would fail at run time is not left behind
        raise
    output.write_text(text)
    return output


@contextmanager
def task_deadlines(pipeline: Any, seconds: float) -> Iterator[None]:
    """While the block compiles ``pipeline``, every task without a deadline of its own gets
    ``seconds`` as its pod's ``activeDeadlineSeconds`` (what ``kfp.kubernetes.set_timeout``
    writes; a task given one with :func:`kfp_mlflow.set_timeout` keeps it).

    The run-wide default is known only when compiling (``--task-timeout``), after the graph was
    built, so it is added to a copy of the graph's platform spec, through its protobuf schema;
    the pipeline object is left as it was.
    """
    from kfp.pipeline_spec import pipeline_spec_pb2

    original = pipeline.component_spec.platform_spec
    patched = pipeline_spec_pb2.PlatformSpec()
    patched.CopyFrom(original)
    executors = patched.platforms["kubernetes"].deployment_spec.executors
    for name in pipeline.pipeline_spec.deployment_spec["executors"]:
        config = executors[name]
        if "activeDeadlineSeconds" not in config:
            # int64 in the schema: protobuf's JSON form is a string, as kfp-kubernetes writes it.
            config["activeDeadlineSeconds"] = str(math.ceil(seconds))
    pipeline.component_spec.platform_spec = patched
    try:
        yield
    finally:
        pipeline.component_spec.platform_spec = original


def stable_header(text: str) -> str:
    """The compiled text with the header's default values printed with sorted keys."""
    return "".join(_stable_line(line) for line in text.splitlines(keepends=True))


def _stable_line(line: str) -> str:
    match = _DEFAULT_COMMENT.match(line.rstrip("\n"))
    if not match:
        return line
    try:
        value = ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        return line
    return f"{match.group(1)}{_sorted(value)!r}{match.group(3)}\n"


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value
