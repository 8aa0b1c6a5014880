"""Fault injection: each test owns a real `mlflow server` it can kill, pause or break."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from kfp_mlflow.local_server import LocalMlflowServer

PIPELINE = """
import os, signal
from kfp import dsl
import kfp_mlflow

@kfp_mlflow.component
def work(item: int, seconds: float) -> None:
    import time
    import kfp_mlflow
    time.sleep(seconds)
    # An upload: goes through the server to its artifact store.
    kfp_mlflow.current_run().log_dict({"item": item}, "done.json")

@kfp_mlflow.component
def oom() -> None:
    import os, signal
    hog = bytearray(300 * 1024 * 1024)  # resident: the peak the runner reports
    hog[::4096] = b"x" * len(hog[::4096])
    import time
    time.sleep(3)  # as a real one grows before the kernel steps in
    os.kill(os.getpid(), signal.SIGKILL)

@dsl.pipeline(name="faults")
def faults(items: list = [1, 2, 3, 4, 5, 6], seconds: float = 4.0, kill: bool = False) -> None:
    with kfp_mlflow.exit_handler():
        with dsl.If(kill == True):
            oom()
        with dsl.Else():
            with dsl.ParallelFor(items) as item:
                work(item=item, seconds=seconds)
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)  # real servers: not in the fast tier


class Server:
    """A real server whose whole process group the test can signal, restartable in place."""

    def __init__(self, directory: Path) -> None:
        self.server = LocalMlflowServer(directory)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.server.start()

    def signal(self, signum: int) -> None:
        assert self.server.process is not None
        os.killpg(self.server.process.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.server.process is not None
        self.server.process.wait(timeout=10)
        time.sleep(0.5)  # let the kernel release the port

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    owned = Server(tmp_path / "mlflow")
    owned.start()
    yield owned
    if owned.server.process is not None and owned.server.process.poll() is None:
        owned.signal(signal.SIGCONT)
    owned.stop()


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
