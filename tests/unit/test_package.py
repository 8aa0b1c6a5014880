"""The package's public surface, settings and architecture rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kfp_mlflow
from kfp_mlflow.core.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_public_api_is_pinned():
    assert kfp_mlflow.__all__ == [
        "Components",
        "ConfigError",
        "ContractError",
        "DataError",
        "DatasetInfo",
        "Decision",
        "EvaluationInfo",
        "KfpContext",
        "KfpMlflowError",
        "LocalMlflowServer",
        "LocalRun",
        "MetricSpec",
        "ModelInfo",
        "PipelineRunError",
        "Policy",
        "PromotionError",
        "Settings",
        "SplitRows",
        "StepFailedError",
        "TaskRun",
        "TrackedComponent",
        "TrackingError",
        "__version__",
        "build_training_pipeline",
        "check_arguments",
        "column_encoder",
        "compile_pipeline",
        "component",
        "current_kfp",
        "current_run",
        "evaluate",
        "exit_handler",
        "export_onnx",
        "get_settings",
        "load_components",
        "load_pipeline",
        "preprocess",
        "promote",
        "publish_model",
        "read_split",
        "register",
        "run_local",
        "save_model",
        "set_timeout",
        "train",
    ]
    assert set(kfp_mlflow.__all__) == {"__version__", *kfp_mlflow._EXPORTS, *kfp_mlflow._COMPONENTS}
    for name in kfp_mlflow.__all__:
        assert getattr(kfp_mlflow, name) is not None


def test_importing_the_package_or_a_step_does_not_import_kfp():
    code = (
        "import sys, kfp_mlflow.steps.train, kfp_mlflow.steps.register;"
        "print('kfp' in sys.modules, 'mlflow' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_settings_read_prefixed_and_standard_variables(monkeypatch):
    monkeypatch.setenv("KFP_MLFLOW_MODEL_NAME", "house-prices")
    monkeypatch.setenv("KFP_MLFLOW_THRESHOLDS", '["r2>=0.5"]')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "prices")
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc")
    get_settings.cache_clear()
    settings = get_settings()
    assert settings.model_name == "house-prices"
    assert settings.thresholds == ["r2>=0.5"]
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.experiment_name == "prices"
    assert settings.injected_run_id == "abc"


def test_bad_setting_names_the_variable(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("KFP_MLFLOW_TEST_SIZE", "1.5")
    with pytest.raises(ValidationError, match="test_size"):
        Settings()


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2")
    assert "hunter2" not in repr(Settings())


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter not installed")
def test_business_logic_never_imports_kfp():
    result = subprocess.run(["lint-imports"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Business logic never imports kfp KEPT" in result.stdout
    assert "Layers: each package imports only those below it KEPT" in result.stdout


def test_every_subpackage_sits_in_a_layer():
    """The layers contract covers the whole package: a new subpackage must take its place."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    layered = {name.strip() for layer in layers for name in layer.split("|")}
    package = ROOT / "src" / "kfp_mlflow"
    subpackages = {
        f"kfp_mlflow.{p.name}" for p in package.iterdir() if (p / "__init__.py").exists()
    }
    assert subpackages == layered
    modules = sorted(p.name for p in package.glob("*.py"))
    # features.py: the old import path of a transformer that saved models name (compatibility).
    assert modules == ["__init__.py", "_version.py", "features.py"]


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        variables = alias.choices if alias is not None else [f"KFP_MLFLOW_{name.upper()}"]  # type: ignore[union-attr]
        assert any(f"`{variable}`" in readme for variable in variables), name


def test_the_readme_test_command_is_what_ci_runs():
    """CI proves the README's second command: same extras installed, same `pytest`."""
    import re

    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    installed = re.search(r"pip install .*-e '(\.\[[^\]]+\])'", ci)
    assert installed, ".ci/run installs the package with its extras"
    assert f"pip install -e '{installed.group(1)}' && pytest" in readme
    assert re.search(r"(?m)^python -m pytest$", ci), ".ci/run runs plain pytest"


def test_versions_saved_before_the_layers_still_find_their_transformer():
    """skops records a transformer by import path; versions registered earlier name the old one."""
    import importlib

    from kfp_mlflow.data.features import DatetimeFeatures

    assert importlib.import_module("kfp_mlflow.features").DatetimeFeatures is DatetimeFeatures
