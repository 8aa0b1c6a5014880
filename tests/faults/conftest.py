"""Fault injection: each test owns a real `mlflow server` it can kill, pause or break."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support.faults import PIPELINE, Server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)  # real servers: not in the fast tier


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    owned = Server(tmp_path / "mlflow")
    owned.start()
    yield owned
    owned.stop()  # resumes a paused one first


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "faults.py").write_text(PIPELINE)
    return folder


def environment(url: str, experiment: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}
    return env | {"MLFLOW_TRACKING_URI": url, "MLFLOW_EXPERIMENT_NAME": experiment}


def start_run(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", "run",
         "--pipeline", "faults.py:faults", *args],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def cli(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def wait_for_runs(
    url: str, experiment: str, step: str, count: int = 1, timeout: float = 90
) -> None:
    client = MlflowClient(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.get_experiment_by_name(experiment)
        if (
            found
            and len(
                client.search_runs(
                    [found.experiment_id], filter_string=f"tags.`kfp_mlflow.step` = '{step}'"
                )
            )
            >= count
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {step} run appeared within {timeout}s")


def statuses(url: str, experiment: str) -> dict[str, int]:
    client = MlflowClient(url)
    found = client.get_experiment_by_name(experiment)
    counts: dict[str, int] = {}
    for run in client.search_runs([found.experiment_id], max_results=500) if found else []:
        counts[run.info.status] = counts.get(run.info.status, 0) + 1
    return counts
