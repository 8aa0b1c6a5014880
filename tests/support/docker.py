"""The component image in a real Docker engine, built once per test session by .ci/build-image.

The script starts the engine where none answers (root on Debian), builds the image from the lock
(Docker's layer cache makes a rebuild after a code change take seconds) and checks it; every
test that needs the image shares the one build through the session fixture below.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / ".ci" / "build-image"
LOCK_FILE = REPO_ROOT / "components" / "requirements.lock"
# The image's own user (components/Dockerfile: USER 10001, group 0).
IMAGE_UID = 10001


@dataclass(frozen=True)
class BuiltImage:
    reference: str  # the tag the settings name, e.g. ghcr.io/kfp-mlflow/kfp-mlflow:0.1.0
    image_id: str  # sha256:<digest of the image config>: what a task really ran in
    build_seconds: float
    build_log: str

    def run(self, *command: str, network: str = "none", check: bool = True) -> str:
        """Run ``command`` in a throwaway container (no network by default); its stdout."""
        result = subprocess.run(
            ["docker", "run", "--rm", f"--network={network}", self.reference, *command],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`{' '.join(command)}` exited {result.returncode} in {self.reference}: "
                f"{result.stderr.strip()[-2000:]}"
            )
        return result.stdout

    def inspect(self, template: str) -> str:
        return subprocess.run(
            ["docker", "image", "inspect", "-f", template, self.reference],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip


def locked_versions() -> dict[str, str]:
    """``name -> version`` of every package pinned in components/requirements.lock."""
    versions = {}
    for line in LOCK_FILE.read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            versions[name.strip().lower()] = rest.split()[0]
    return versions


def build_image() -> BuiltImage:
    """Run .ci/build-image (engine, base, image, checks); fail with its output if it fails."""
    started = time.perf_counter()
    # The script reads the tag from the settings through this interpreter, with the project's
    # variables cleared as every test sees them (tests/conftest.py).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KFP_MLFLOW_", "MLFLOW_"))}
    env["PYTHON"] = sys.executable
    result = subprocess.run(
        [str(BUILD_SCRIPT)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT} failed ({result.returncode}):\n{output[-4000:]}")
    reference = ""
    for line in result.stdout.splitlines():
        if line.startswith("build-image: built "):
            reference = line.split()[2]
    if not reference:
        raise RuntimeError(f"{BUILD_SCRIPT} printed no `built <reference> <id>` line:\n{output}")
    image_id = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", reference],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return BuiltImage(reference, image_id, time.perf_counter() - started, output)


@pytest.fixture(scope="session")
def component_image() -> BuiltImage:
    """The component image, built (or found up to date in Docker's cache) once per session."""
    return build_image()
