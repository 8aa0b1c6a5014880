"""The task runtime's rules, checked without servers: the import-lock hazard it avoids, the
supervisor's wire format and verdicts, and the task environment."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kfp_mlflow.core.settings import Settings, task_environment
from kfp_mlflow.runtime import supervisor
from kfp_mlflow.runtime.supervisor import ExitFacts

# What hung `register`: MLflow's meta-path finder takes MLflow's own lock, which
# `mlflow.models.evaluate` holds while it imports scikit-learn; Python calls every finder with its
# global import lock held. A second thread importing a new module at that moment deadlocks both.
_HAZARD = textwrap.dedent(
    """
    import importlib.abc, sys, threading, time
    hook_lock = threading.RLock()  # as mlflow.utils.import_hooks' lock

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            with hook_lock:  # called under Python's global import lock
                return None

    sys.meta_path.insert(0, Finder())
    with hook_lock:  # evaluate, holding MLflow's lock...
        if sys.argv[1] == "with-thread":
            # ...while a heartbeat thread makes its first import
            threading.Thread(target=__import__, args=("colorsys",), daemon=True).start()
            time.sleep(0.5)
        import wave  # ...imports (scikit-learn, in the real case)
    print("finished")
    """
)


@pytest.mark.parametrize("shape", ["with-thread", "main-thread-only"])
def test_a_thread_that_imports_beside_a_lock_holding_import_deadlocks(shape, tmp_path):
    script = tmp_path / "hazard.py"
    script.write_text(_HAZARD)
    try:
        result = subprocess.run(
            [sys.executable, str(script), shape], capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        hung = True
    else:
        hung = False
        assert result.stdout.strip() == "finished", result.stderr
    # The mechanism is real (so a runtime thread that imports is a bug), and one thread is safe.
    assert hung == (shape == "with-thread")


def test_the_executor_and_the_supervisor_start_no_thread():
    """The runtime's own modules never create a thread where a task runs (the driver's
    lifeline watcher lives in the driver process, which runs no step)."""
    source = Path(supervisor.__file__).read_text()
    executor = (Path(supervisor.__file__).parent / "executor.py").read_text()
    assert "Thread(" not in source
    assert "Thread(" not in executor


def test_exit_facts_round_trip_and_name_the_signal(tmp_path):
    facts = ExitFacts(pid=42, task="train", started=10.0, ended=13.5, signal=signal.SIGTERM)
    facts.save(tmp_path)
    read = ExitFacts.read_all(tmp_path)[42]
    assert read == facts
    assert read.seconds == pytest.approx(3.5)
    assert read.signal_name == "SIGTERM"


def test_the_wire_format_carries_descriptors():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reader, writer = os.pipe()
    try:
        supervisor._send(left, {"run": {"argv": ["a"]}}, fds=[writer])
        message, fds = supervisor._receive(right, max_fds=3)
        assert message == {"run": {"argv": ["a"]}}
        assert len(fds) == 1
        os.write(fds[0], b"through the passed descriptor")
        assert os.read(reader, 100) == b"through the passed descriptor"
        os.close(fds[0])
    finally:
        for fd in (reader, writer):
            os.close(fd)
        left.close()
        right.close()


def test_a_client_runs_a_task_in_a_cold_supervisor_and_gets_its_status(tmp_path):
    """The whole route once, cold (exec): client → supervisor → task → exit facts."""
    sock = str(tmp_path / "s.sock")
    status = tmp_path / "status"
    process = subprocess.Popen(
        [sys.executable, "-m", "kfp_mlflow.runtime.supervisor", "--socket", sock,
         "--status-dir", str(status), "--cold", "--default-timeout", "30"],
    )  # fmt: skip
    try:
        # No executor input: the executor fails argument parsing with status 2, through the
        # whole route; the supervisor records that exit.
        code = subprocess.run(
            [sys.executable, "-c",
             "import sys; from kfp_mlflow.runtime.supervisor import delegate; "
             f"sys.exit(delegate({sock!r}, ['--bogus']))"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert code.returncode == 2, code.stderr
        assert "--function_to_execute" in code.stderr  # the task's own stderr came through
        facts = list(ExitFacts.read_all(status).values())
        assert [fact.exit_code for fact in facts] == [2]
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_tasks_receive_settings_and_secrets_through_one_environment(tmp_path, monkeypatch):
    settings = Settings(
        MLFLOW_EXPERIMENT_NAME="exp",
        MLFLOW_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
        task_timeout=30,
    )
    env = task_environment(
        settings, tracking_uri="http://127.0.0.1:5000", runner="docker", status_dir=tmp_path
    )
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["AWS_ACCESS_KEY_ID"] == "key"
    assert env["AWS_SECRET_ACCESS_KEY"] == "secret"
    assert env["KFP_MLFLOW_TASK_TIMEOUT"] == "30"
    assert env["KFP_MLFLOW_RUNNER"] == "docker"
    # Read back inside the task by the same settings class, from the environment.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    again = Settings()
    assert again.experiment_name == "exp"
    assert again.task_timeout == 30
    assert again.s3_secret_key is not None
    assert again.s3_secret_key.get_secret_value() == "secret"
    assert again.status_dir == tmp_path
