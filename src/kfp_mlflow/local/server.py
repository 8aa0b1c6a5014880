"""A real `mlflow server` on 127.0.0.1 for local runs and tests (SQLite or a given database;
local artifacts).

Artifacts are served through the server (``--serve-artifacts``), as on the cluster, so steps
log models over HTTP and need no storage access of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kfp_mlflow.core.exceptions import TrackingError
from kfp_mlflow.core.net import free_port, is_healthy
from kfp_mlflow.core.settings import child_environment
from kfp_mlflow.tracking.ledger import alive

_STATE_FILE = "server.json"
_LOCK_FILE = "server.lock"
_START_TIMEOUT_S = 90.0
# A local server needs the tracking and artifact API only: MLflow 3's job runner (a supervisor
# and three huey consumer processes, ~0.25 GB each) serves features no local run uses.
_SERVER_ENV = {"MLFLOW_TRACKING_URI": "", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@dataclass
class LocalMlflowServer:
    """An `mlflow server` process whose store lives in ``directory``."""

    directory: Path
    host: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    # Any store URI MLflow accepts (postgresql+psycopg2://...); empty means SQLite in directory.
    backend_store_uri: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def start(self, *, detached: bool = False) -> LocalMlflowServer:
        """Start the server and wait until it is healthy."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", self.backend_store_uri or self._sqlite_uri(),
            "--artifacts-destination", str((self.directory / "artifacts").resolve()),
            "--serve-artifacts",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: the server spawns uvicorn workers, stopped together.
                start_new_session=True,
                env=child_environment(_SERVER_ENV),
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TrackingError(
                    f"the local MLflow server exited with code {self.process.returncode}",
                    hint=f"see {self.log_path}",
                )
            if is_healthy(self.url, timeout=1.0):
                if detached:
                    self._write_state()
                return self
            time.sleep(0.25)
        self.stop()
        raise TrackingError(
            f"the local MLflow server did not answer on {self.url} within {_START_TIMEOUT_S:.0f}s",
            hint=f"see {self.log_path}",
        )

    def stop(self) -> None:
        """Stop the server (its whole process group) and forget it."""
        if self.process is not None and self.process.poll() is None:
            _terminate(self.process.pid)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        (self.directory / _STATE_FILE).unlink(missing_ok=True)

    def _sqlite_uri(self) -> str:
        return f"sqlite:///{(self.directory / 'mlflow.db').resolve()}"

    def _write_state(self) -> None:
        assert self.process is not None
        state = {"pid": self.process.pid, "url": self.url, "port": self.port}
        (self.directory / _STATE_FILE).write_text(json.dumps(state))

    def __enter__(self) -> LocalMlflowServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _terminate(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return


def _read_state(directory: Path) -> tuple[int, str] | None:
    """(pid, url) of the detached server recorded for ``directory``; None if none or unreadable."""
    try:
        state = json.loads((directory / _STATE_FILE).read_text())
        return int(state["pid"]), str(state["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_server(directory: Path) -> str | None:
    """The URL of a detached server started earlier for ``directory``, if it still answers."""
    state = _read_state(directory)
    return state[1] if state and is_healthy(state[1]) else None


def has_store(directory: Path) -> bool:
    """Whether ``directory`` holds a local server's data (its SQLite store)."""
    return (directory / "mlflow.db").is_file()


def ensure_server(directory: Path, port: int = 0) -> str:
    """Reuse the detached local server of ``directory`` or start one; return its URL.

    Concurrent first starts in one directory agree on one server: the check and the start
    (with its database migration) happen under an exclusive lock on a file beside the store.
    The server does not inherit the lock's descriptor (``Popen`` closes it in the child).
    """
    url = running_server(directory)
    if url:
        return url
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory / _LOCK_FILE):
        url = running_server(directory)  # started by whoever held the lock before us
        if url:
            return url
        return LocalMlflowServer(directory, port=port).start(detached=True).url


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a") as handle:
        deadline = time.monotonic() + _START_TIMEOUT_S + 10
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TrackingError(
                        f"another process has been starting the local MLflow server in "
                        f"{path.parent} for over {_START_TIMEOUT_S + 10:.0f}s",
                        hint=f"see {path.parent / 'server.log'}",
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Stopped:
    """What ``server stop`` found: ``running`` False means there was nothing to stop
    (``stale`` when a state file named a server that had already exited)."""

    running: bool
    stale: bool = False
    url: str = ""


def stop_server(directory: Path) -> Stopped:
    """Stop the detached local server of ``directory``."""
    state_file = directory / _STATE_FILE
    state = _read_state(directory)
    if state is None:
        state_file.unlink(missing_ok=True)
        return Stopped(running=False)
    pid, url = state
    if not alive(pid):
        state_file.unlink(missing_ok=True)
        return Stopped(running=False, stale=True, url=url)
    _terminate(pid)
    for _ in range(60):
        if not alive(pid):
            break
        time.sleep(0.25)
    state_file.unlink(missing_ok=True)
    return Stopped(running=True, url=url)
