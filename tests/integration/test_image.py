"""The component image, built by .ci/build-image in a real Docker engine, holds what tasks need."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.support.docker import IMAGE_UID, LOCK_FILE, BuiltImage, locked_versions

pytestmark = pytest.mark.docker


def test_runs_as_the_non_root_image_user(component_image: BuiltImage) -> None:
    assert component_image.run("id", "-u").strip() == str(IMAGE_UID)
    assert component_image.inspect("{{.Config.User}}") == str(IMAGE_UID)


def test_installed_packages_are_exactly_the_lock(component_image: BuiltImage) -> None:
    component_image.run("pip", "check")
    installed = json.loads(
        component_image.run(
            "python",
            "-c",
            "import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        )
    )
    # Distribution names as the lock spells them (PEP 503: importlib_metadata == importlib-metadata).
    installed = {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in installed.items()}
    locked = locked_versions()
    for name in ("kfp", "mlflow", "scikit-learn"):
        assert installed[name] == locked[name], name
    # Every locked package at its locked version; beyond the lock only the project and the
    # venv's own pip.
    assert {n: installed.get(n) for n in locked} == locked
    assert set(installed) - set(locked) <= {"kfp-mlflow", "pip"}


def test_cli_and_every_step_import_with_no_network(component_image: BuiltImage) -> None:
    assert "Usage" in component_image.run("kfp-mlflow", "--help")
    imported = component_image.run(
        "python",
        "-c",
        "import importlib, pkgutil, socket\n"
        "import kfp_mlflow.components, kfp_mlflow.pipelines, kfp_mlflow.steps\n"
        "names = [f'{p.__name__}.{m.name}' for p in (kfp_mlflow.steps, kfp_mlflow.components,"
        " kfp_mlflow.pipelines) for m in pkgutil.iter_modules(p.__path__)]\n"
        "[importlib.import_module(n) for n in names]\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 443), timeout=3)\n"
        "    print('NETWORK')\n"
        "except OSError:\n"
        "    pass\n"
        "print(*names)",
    )
    assert "NETWORK" not in imported, "the container reached the network: the check proves nothing"
    names = imported.split()
    for step in ("preprocess", "train", "evaluate", "register"):
        assert f"kfp_mlflow.steps.{step}" in names
        assert f"kfp_mlflow.components.{step}" in names
    assert "kfp_mlflow.pipelines.training" in names


def test_image_names_its_reference_and_lock(component_image: BuiltImage) -> None:
    env = component_image.inspect("{{json .Config.Env}}")
    assert f"KFP_MLFLOW_IMAGE={component_image.reference}" in json.loads(env)
    lock_sha = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    label = component_image.inspect(
        '{{index .Config.Labels "io.kfp-mlflow.requirements-lock.sha256"}}'
    )
    assert label == lock_sha
    assert component_image.image_id.startswith("sha256:")
