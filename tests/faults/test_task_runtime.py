"""The task runtime under faults: deadlines, signals, dead tasks, killed CLIs, real OOM kills.

Every case runs the real CLI on a user pipeline against a real `mlflow server`, then reads
MLflow back (nothing RUNNING, the right statuses) and the process table (nothing of the run
left alive: every process of a local run carries its status directory in its environment).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.faults.conftest import cli, environment, statuses
from tests.support.faults import RUNTIME_PIPELINE, processes_of

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def runtime_project(tmp_path: Path) -> Path:
    folder = tmp_path / "rt"
    folder.mkdir()
    (folder / "runtime.py").write_text(RUNTIME_PIPELINE)
    return folder


def run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return cli(project, env, "run", "--pipeline", "runtime.py:runtime", *args)


def start(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", "run",
         "--pipeline", "runtime.py:runtime", *args],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def runs(url: str, experiment: str) -> list:
    client = MlflowClient(url)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def step_runs(url: str, experiment: str) -> dict[str, str]:
    """Status of each behave task's run, by the mode it was given (a logged input param)."""
    return {
        run.data.params["mode"]: run.info.status
        for run in runs(url, experiment)
        if run.data.tags.get("kfp_mlflow.step") == "behave"
    }


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert lines, stderr
    return lines[-1]


def wait_until_running(url: str, experiment: str, count: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        running = [
            r for r in runs(url, experiment) if r.data.tags.get("kfp_mlflow.step") == "behave"
        ]
        if len(running) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{count} behave task(s) never started")


def test_a_task_that_never_ends_times_out_and_nothing_is_left(server, runtime_project):
    env = environment(server.url, "forever")
    began = time.monotonic()
    result = run(runtime_project, env, "--task-timeout", "8", "--arg", 'modes=["forever"]')
    took = time.monotonic() - began
    assert result.returncode == 11, result.stderr
    line = last_line(result.stderr)
    assert "timed out after 8s" in line and "behave" in line
    assert took < 90, took
    assert "RUNNING" not in statuses(server.url, "forever")
    assert set(step_runs(server.url, "forever").values()) == {"FAILED"}
    assert not processes_of(runtime_project)


def test_a_task_stuck_where_python_cannot_act_is_killed_at_its_deadline(server, runtime_project):
    """Signals blocked (as in a deadlock inside C code): only the supervisor's SIGKILL works."""
    env = environment(server.url, "stuck")
    result = run(runtime_project, env, "--task-timeout", "5", "--arg", 'modes=["stuck"]')
    assert result.returncode == 11, result.stderr
    assert "timed out after 5s" in last_line(result.stderr)
    assert "RUNNING" not in statuses(server.url, "stuck")
    assert not processes_of(runtime_project)


@pytest.mark.parametrize(
    ("mode", "code", "says"),
    [
        ("exit0", 2, "called sys.exit(0) before returning"),
        ("exit3", 6, "exited with status 3 without reporting a result"),
        ("sigterm", 6, "terminated by SIGTERM"),
        ("segv", 6, "was ended by SIGSEGV"),
        ("sigkill", 6, "was killed by SIGKILL"),
    ],
)
def test_how_a_task_ended_is_what_the_cli_says(server, runtime_project, mode, code, says):
    env = environment(server.url, mode)
    result = run(runtime_project, env, "--arg", f'modes=["{mode}"]')
    assert result.returncode == code, result.stderr
    line = last_line(result.stderr)
    assert says in line, line
    assert "out-of-memory killer)" not in line or "not the out-of-memory" in line
    if mode in ("exit3", "segv", "sigkill"):
        # Died without a word: the duration is the task's own (a second or two), not the run's.
        seconds = float(line.split(" after ")[1].split("s")[0])
        assert seconds < 15, line
    assert "RUNNING" not in statuses(server.url, mode)
    assert not processes_of(runtime_project)


def test_the_first_failure_stops_the_others_at_once(server, runtime_project):
    env = environment(server.url, "failfast")
    began = time.monotonic()
    result = run(runtime_project, env, "--arg", 'modes=["fail", "sleep60"]')
    took = time.monotonic() - began
    assert result.returncode == 6, result.stderr
    assert "ValueError" in last_line(result.stderr) or "wrong on purpose" in last_line(
        result.stderr
    )
    assert took < 45, took  # not the sibling's 60 s
    tasks = step_runs(server.url, "failfast")
    assert tasks["fail"] == "FAILED"
    assert tasks["sleep60"] == "KILLED"
    assert "RUNNING" not in statuses(server.url, "failfast")
    assert not processes_of(runtime_project)


def test_a_run_a_step_opened_itself_is_closed_when_the_task_dies(server, runtime_project):
    env = environment(server.url, "nested")
    result = run(runtime_project, env, "--arg", 'modes=["nested"]')
    assert result.returncode == 6, result.stderr
    found = runs(server.url, "nested")
    nested = [run for run in found if run.info.run_name == "own-nested-run"]
    assert len(nested) == 1
    task = next(run for run in found if run.data.tags.get("kfp_mlflow.step") == "behave")
    # Found by its KFP identity, under the task's run, and closed.
    assert nested[0].data.tags["mlflow.parentRunId"] == task.info.run_id
    assert nested[0].data.tags["kfp.pipeline_run_id"] == task.data.tags["kfp.pipeline_run_id"]
    assert nested[0].info.status == "FAILED"
    assert "RUNNING" not in statuses(server.url, "nested")


def test_a_stray_thread_does_not_keep_a_finished_task_alive(server, runtime_project):
    env = environment(server.url, "thread")
    result = run(runtime_project, env, "--task-timeout", "60", "--arg", 'modes=["thread"]')
    assert result.returncode == 0, result.stderr
    assert set(step_runs(server.url, "thread").values()) == {"FINISHED"}
    assert not processes_of(runtime_project)


def test_the_task_runtime_runs_no_thread_beside_the_step(server, runtime_project):
    """What deadlocked `register`: a runtime thread importing while MLflow imports under its
    own lock. The step counts the threads of its own process."""
    env = environment(server.url, "threads")
    result = run(runtime_project, env, "--arg", 'modes=["count-threads"]')
    assert result.returncode == 0, result.stderr
    task = next(
        run
        for run in runs(server.url, "threads")
        if run.data.tags.get("kfp_mlflow.step") == "behave"
    )
    assert task.data.metrics["python_threads"] == 1


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_cli_leaves_no_task_and_no_open_run(server, runtime_project, signum):
    env = environment(server.url, f"cli-{signum}")
    process = start(runtime_project, env, "--arg", 'modes=["sleep60", "sleep60"]')
    wait_until_running(server.url, f"cli-{signum}", count=2)
    assert processes_of(runtime_project)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM, stderr
        assert "interrupted by SIGTERM" in last_line(stderr)
    deadline = time.monotonic() + 30
    while processes_of(runtime_project) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not processes_of(runtime_project)
    if signum == signal.SIGKILL:
        # Nobody closed the runs: the next command against the server does.
        reconciled = cli(runtime_project, env, "runs", "reconcile")
        assert reconciled.returncode == 0, reconciled.stderr
    assert "RUNNING" not in statuses(server.url, f"cli-{signum}")


def _memory_cgroup_root() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if folder.is_dir() and os.access(folder, os.W_OK):
                return folder
    return None


def test_a_task_the_oom_killer_ends_is_named_with_the_evidence(server, runtime_project):
    """A real OOM kill: the run in a memory cgroup of its own, one task allocating past it."""
    root = _memory_cgroup_root()
    if root is None:
        pytest.skip("no writable cgroup v1 memory controller here: cannot cause a real OOM kill")
    group = root / f"kfp-mlflow-oom-{os.getpid()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(1536 * 1024 * 1024))
        env = environment(server.url, "oom")

        def join() -> None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

        result = subprocess.run(
            [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", "run",
             "--pipeline", "runtime.py:runtime", "--arg", 'modes=["hog"]'],
            cwd=runtime_project, env=env, capture_output=True, text=True, timeout=200,
            preexec_fn=join,
        )  # fmt: skip
    finally:
        for pid in (group / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.5)
        group.rmdir()
    assert result.returncode == 6, result.stderr
    line = last_line(result.stderr)
    assert "killed by the kernel's out-of-memory killer" in line, line
    assert "oom_kill counter went" in line
    peak = float(line.split("peak memory ")[1].split(" MB")[0])
    assert peak > 500, line
    assert "RUNNING" not in statuses(server.url, "oom")
