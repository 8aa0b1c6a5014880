"""The task supervisor of a local run: one process that starts, times and ends every task.

kfp.local launches each task as ``sh -c '... python3 -m kfp_mlflow.runtime.executor ...'``. When the
runner has started a supervisor, that executor process is only a *client*
(:func:`delegate`): it hands its argv, environment, working directory and standard streams (the
file descriptors themselves) to the supervisor over a Unix socket, relays signals, and exits with
the task's status. The supervisor forks the task:

* **warm** (default): from itself, after importing the heavy modules (kfp's executor, MLflow,
  scikit-learn, pandas, the steps) once per run, so a task starts in milliseconds instead of
  the 4-8 s a fresh interpreter spends importing. Fork safety: the supervisor owns no thread,
  no client socket, no library lock when it forks; it checks that before it serves
  (:func:`_threads`) and falls back to cold otherwise.
* **cold**: the same fork, then ``exec`` of a fresh interpreter (a task that must not share
  anything with its siblings; the benchmark's baseline).

Each task runs in its own process group, with ``PR_SET_PDEATHSIG`` tied to the supervisor, and
the supervisor holds a *lifeline* (a pipe whose write end only the runner holds): if the runner
dies in any way — SIGKILL included — the pipe reads EOF and every task group is ended. Past its
deadline a task's group gets SIGTERM, then SIGKILL after a grace period. When a task ends, the
supervisor writes its *exit facts* (exit code or signal, real duration, peak memory from
``wait4``, deadline, evidence of the kernel's OOM killer from the memory cgroup) into the status
directory, where the runner reads them. The supervisor itself runs no thread, so a task's
interpreter is never forked in the middle of someone else's import.

This module imports only the standard library at the top: the client side runs in every task
process and must stay cheap.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SOCKET_ENV = "KFP_MLFLOW_SUPERVISOR"
EXITS_FOLDER = "exits"
# Seconds between SIGTERM and SIGKILL when a task must end (deadline, stop, runner gone).
GRACE_S = 5.0
# The task's own alarm ends it at its deadline, cleanly (runs FAILED, record written); the
# supervisor steps in this much later, for a task stuck where Python cannot act on a signal.
_DEADLINE_MARGIN_S = 2.0
# How long a client waits for the supervisor to accept it (it may still be importing).
_CONNECT_S = 120.0
_HEADER = struct.Struct("!I")

# What a task imports before it works; preloaded once per run in warm mode. Optional families
# (xgboost, lightgbm, pyspark) are left out: a pipeline that uses them pays for them itself.
PRELOAD: tuple[str, ...] = (
    "kfp.dsl.executor",
    "kfp.dsl.types.artifact_types",
    "mlflow",
    "mlflow.entities",
    "mlflow.tracking",
    "mlflow.sklearn",
    "mlflow.pyfunc",
    "mlflow.models",
    "mlflow.data",
    "pandas",
    "pyarrow.parquet",
    "sklearn.compose",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.inspection",
    "matplotlib.pyplot",
    # How our models are saved and loaded: importing it walks all of scikit-learn (~2 s).
    "skops.io",
    "kfp_mlflow.runtime.executor",
    "kfp_mlflow.tracking.runs",
    "kfp_mlflow.core.contracts",
    "kfp_mlflow.steps.preprocess",
    "kfp_mlflow.steps.train",
    "kfp_mlflow.steps.evaluate",
    "kfp_mlflow.steps.register",
)


@dataclass
class ExitFacts:
    """How one task process ended, as the supervisor saw it (not as the task said)."""

    pid: int
    task: str
    started: float
    ended: float
    exit_code: int | None = None  # set when the process exited
    signal: int | None = None  # set when a signal ended it
    timed_out: bool = False
    timeout: float | None = None
    stopped_by: str | None = None  # why the supervisor ended it: "deadline", "stop", "runner"
    peak_rss_mb: float | None = None
    oom_kill: bool | None = None  # None: no cgroup counter to tell
    oom_evidence: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def signal_name(self) -> str | None:
        if self.signal is None:
            return None
        try:
            return signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"

    def save(self, status_dir: Path) -> None:
        folder = status_dir / EXITS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{self.pid}.tmp"
        partial.write_text(json.dumps(asdict(self)))
        os.replace(partial, folder / f"{self.pid}.json")

    @classmethod
    def read_all(cls, status_dir: Path) -> dict[int, ExitFacts]:
        facts: dict[int, ExitFacts] = {}
        folder = status_dir / EXITS_FOLDER
        for path in folder.glob("*.json") if folder.is_dir() else ():
            with contextlib.suppress(OSError, ValueError, TypeError):
                fact = cls(**json.loads(path.read_text()))
                facts[fact.pid] = fact
        return facts


# --- wire format: a length-prefixed JSON message, optionally with file descriptors -------------


def _send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    payload = json.dumps(message).encode()
    data = _HEADER.pack(len(payload)) + payload
    if fds:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    else:
        sock.sendall(data)


def _receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any] | None, list[int]]:
    """One message (None at EOF) and the descriptors that came with it."""
    fds: list[int] = []
    header = b""
    while len(header) < _HEADER.size:
        if max_fds and not fds:
            data, ancillary, _, _ = sock.recvmsg(
                _HEADER.size - len(header), socket.CMSG_LEN(max_fds * 4)
            )
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    received = array.array("i")
                    received.frombytes(raw[: len(raw) - len(raw) % 4])
                    fds.extend(received)
        else:
            data = sock.recv(_HEADER.size - len(header))
        if not data:
            return None, fds
        header += data
    (size,) = _HEADER.unpack(header)
    payload = b""
    while len(payload) < size:
        chunk = sock.recv(size - len(payload))
        if not chunk:
            return None, fds
        payload += chunk
    return json.loads(payload), fds


# --- the client: what `python -m kfp_mlflow.runtime.executor` does when a supervisor is running
# --------


def delegate(socket_path: str, argv: list[str]) -> int:
    """Run this task in the supervisor at ``socket_path``; return its exit status.

    The task gets this process's standard streams, environment and working directory. SIGTERM,
    SIGINT and SIGHUP sent to this process are passed on to the task's process group, so
    whoever ends the client (kfp.local, a person) ends the task.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + _CONNECT_S
    while True:
        try:
            sock.connect(socket_path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                print(f"kfp-mlflow: no task supervisor at {socket_path}", file=sys.stderr)
                return 70
            time.sleep(0.05)
    request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}
    sys.stdout.flush()
    sys.stderr.flush()
    _send(sock, {"run": request}, fds=[0, 1, 2])
    task_pid: list[int] = []

    def relay(signum: int, frame: object) -> None:
        if task_pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(task_pid[0], signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, relay)
    while True:
        message, _ = _receive(sock)
        if message is None:  # the supervisor went away: it ended the task with it
            print("kfp-mlflow: the task supervisor ended before the task", file=sys.stderr)
            return 70
        if "pid" in message:
            task_pid.append(int(message["pid"]))
        if "exit" in message:
            return int(message["exit"])


def request_stop(socket_path: str) -> None:
    """Ask the supervisor to end every running task and refuse new ones (best effort)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(socket_path)
        _send(sock, {"control": "stop"})
        _receive(sock)


# --- the server ----------------------------------------------------------------------------------


@dataclass
class _Task:
    pid: int
    name: str
    conn: socket.socket
    started: float  # monotonic
    started_wall: float
    timeout: float | None
    oom_before: int | None
    term_at: float | None = None  # when SIGTERM was sent
    stopped_by: str | None = None
    fds: list[int] = field(default_factory=list)

    @property
    def deadline(self) -> float | None:
        return self.started + self.timeout + _DEADLINE_MARGIN_S if self.timeout else None


class Supervisor:
    def __init__(
        self,
        socket_path: str,
        status_dir: Path,
        lifeline: int | None,
        *,
        warm: bool,
        default_timeout: float | None,
    ) -> None:
        self.socket_path = socket_path
        self.status_dir = status_dir
        self.lifeline = lifeline
        self.warm = warm
        self.default_timeout = default_timeout
        self.tasks: dict[int, _Task] = {}
        self.stopping: str | None = None  # why tasks are refused: "stop", "runner", "terminate"
        self.exiting = False
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.wakeup_r, self.wakeup_w = os.pipe()

    def serve(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        # Bound before the preload: clients that start meanwhile wait in the backlog.
        self.listener.bind(self.socket_path)
        self.listener.listen(64)
        if self.warm:
            self.warm = _preload()
        os.set_blocking(self.wakeup_w, False)
        signal.set_wakeup_fd(self.wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._terminate())
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides what Ctrl-C means
        while True:
            self._reap()
            # A stopped run keeps refusing the tasks kfp.local still launches until the runner
            # is done with it (SIGTERM) or gone (lifeline).
            if self.exiting and not self.tasks:
                return 0
            watched: list[Any] = [self.listener, self.wakeup_r]
            if self.lifeline is not None:
                watched.append(self.lifeline)
            try:
                ready, _, _ = select.select(watched, [], [], self._next_timer())
            except InterruptedError:
                continue
            if self.wakeup_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wakeup_r, 512)
            if (
                self.lifeline is not None
                and self.lifeline in ready
                and not os.read(self.lifeline, 64)
            ):
                os.close(self.lifeline)
                self.lifeline = None
                self.exiting = True
                self._stop_all("runner")
            if self.listener in ready:
                self._accept()
            self._enforce()

    # A timer tick: the nearest deadline or SIGKILL due, at most a second away.
    def _next_timer(self) -> float:
        now = time.monotonic()
        due = [now + 1.0]
        for task in self.tasks.values():
            if task.term_at is not None:
                due.append(task.term_at + GRACE_S)
            elif task.deadline is not None:
                due.append(task.deadline)
        return max(0.0, min(due) - now)

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(10.0)
        try:
            message, fds = _receive(conn, max_fds=3)
        except OSError:
            conn.close()
            return
        if message is None:
            conn.close()
            return
        if "control" in message:
            if message["control"] == "stop":
                self._stop_all("stop")
            _send(conn, {"ok": True})
            conn.close()
            return
        if self.stopping or len(fds) != 3:
            # The run is ending: a task kfp.local still launches does no work.
            with contextlib.suppress(OSError):
                _send(conn, {"exit": 75})
            conn.close()
            for fd in fds:
                os.close(fd)
            return
        self._fork(conn, message["run"], fds)

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        env: dict[str, str] = request["env"]
        timeout = _timeout(env.get("KFP_MLFLOW_TASK_TIMEOUT")) or self.default_timeout
        name = _task_name(request["argv"])
        oom_before = _oom_kills()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the task
            try:
                code = self._child(request, fds)
            except BaseException:
                import traceback

                traceback.print_exc()
                code = 70
            os._exit(code)
        for fd in fds:
            os.close(fd)
        conn.settimeout(None)
        task = _Task(pid, name, conn, time.monotonic(), time.time(), timeout, oom_before)
        self.tasks[pid] = task
        with contextlib.suppress(OSError):
            _send(conn, {"pid": pid})

    def _child(self, request: dict[str, Any], fds: list[int]) -> int:
        os.setpgid(0, 0)
        _die_with_parent()
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.listener.close()
        for fd in (self.wakeup_r, self.wakeup_w, self.lifeline):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        for task in self.tasks.values():
            task.conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        argv: list[str] = request["argv"]
        # The task runs the executor itself, not another client.
        env = {key: value for key, value in request["env"].items() if key != SOCKET_ENV}
        if not self.warm:
            os.execve(
                sys.executable, [sys.executable, "-m", "kfp_mlflow.runtime.executor", *argv], env
            )
        os.environ.clear()
        os.environ.update(env)
        # As `python -m` would: the working directory first on the path.
        sys.path[0] = request["cwd"]
        sys.argv = ["kfp_mlflow.runtime.executor", *argv]
        from kfp_mlflow.runtime.executor import main

        try:
            main(argv)
        except SystemExit as done:
            code = done.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        return 0

    def _reap(self) -> None:
        while self.tasks:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            task = self.tasks.pop(pid, None)
            if task is None:
                continue
            self._finish(task, status, usage)

    def _finish(self, task: _Task, status: int, usage: Any) -> None:
        facts = ExitFacts(
            pid=task.pid,
            task=task.name,
            started=task.started_wall,
            ended=task.started_wall + (time.monotonic() - task.started),
            timeout=task.timeout,
            stopped_by=task.stopped_by,
            timed_out=task.stopped_by == "deadline",
            peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        )
        if os.WIFSIGNALED(status):
            facts.signal = os.WTERMSIG(status)
            code = 128 + facts.signal
        else:
            facts.exit_code = code = os.WEXITSTATUS(status)
        if facts.signal == signal.SIGKILL and task.stopped_by is None:
            after = _oom_kills()
            if after is not None and task.oom_before is not None:
                facts.oom_kill = after > task.oom_before
                facts.oom_evidence = (
                    f"the memory cgroup's oom_kill counter went {task.oom_before} → {after}"
                )
        with contextlib.suppress(OSError):
            facts.save(self.status_dir)
        with contextlib.suppress(OSError):
            _send(task.conn, {"exit": code})
        task.conn.close()

    def _enforce(self) -> None:
        now = time.monotonic()
        for task in self.tasks.values():
            if task.term_at is not None:
                if now >= task.term_at + GRACE_S:
                    _signal_group(task.pid, signal.SIGKILL)
            elif task.deadline is not None and now >= task.deadline:
                self._end(task, "deadline")

    def _end(self, task: _Task, why: str) -> None:
        task.stopped_by = task.stopped_by or why
        task.term_at = time.monotonic()
        # A stopped (SIGSTOP) task would not act on SIGTERM before it is continued.
        _signal_group(task.pid, signal.SIGTERM)
        _signal_group(task.pid, signal.SIGCONT)

    def _terminate(self) -> None:
        self.exiting = True
        self._stop_all("terminate")

    def _stop_all(self, why: str) -> None:
        self.stopping = self.stopping or why
        for task in self.tasks.values():
            if task.term_at is None:
                self._end(task, why)
            elif why == "runner":
                _signal_group(task.pid, signal.SIGKILL)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _timeout(text: str | None) -> float | None:
    try:
        value = float(text) if text else 0.0
    except ValueError:
        return None
    return value if value > 0 else None


def _task_name(argv: list[str]) -> str:
    """The KFP task name from the executor input (for the exit facts; best effort)."""
    with contextlib.suppress(ValueError, IndexError, KeyError, TypeError, AttributeError):
        executor_input = json.loads(argv[argv.index("--executor_input") + 1])
        return str(executor_input["inputs"]["parameterValues"].get("kfp_task_name", ""))
    return ""


def _preload() -> bool:
    """Import what tasks import; True when it is safe to fork from this process afterwards."""
    import importlib

    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as error:
            print(f"kfp-mlflow supervisor: not preloaded {name}: {error}", file=sys.stderr)
    others = [name for name in _threads()[1:] if name not in FORK_SAFE_THREADS]
    if others:
        print(
            f"kfp-mlflow supervisor: threads {others} after the preload; tasks start cold",
            file=sys.stderr,
        )
        return False
    return True


# Native threads that survive a fork by design: jemalloc (pyarrow's allocator) stops and
# restarts its background thread in its own pthread_atfork handlers.
FORK_SAFE_THREADS = frozenset({"jemalloc_bg_thd"})


def _threads() -> list[str]:
    """The names of this process's threads, native ones included, the main thread first."""
    try:
        ids = sorted(os.listdir("/proc/self/task"), key=int)
        return [Path(f"/proc/self/task/{tid}/comm").read_text().strip() for tid in ids]
    except OSError:
        import threading

        return [thread.name for thread in threading.enumerate()]


def _die_with_parent() -> None:
    """SIGKILL this process when the supervisor dies (Linux); a no-op elsewhere."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _memory_cgroup_file() -> Path | None:
    """The file holding this process's memory cgroup oom_kill counter (v2, else v1)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events"
            if candidate.exists():
                return candidate
        if "memory" in controllers.split(","):
            candidate = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control"
            if candidate.exists():
                return candidate
    return None


def _oom_kills() -> int | None:
    """The kernel's count of OOM kills in this process's memory cgroup, if it keeps one."""
    path = _memory_cgroup_file()
    if path is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="kfp-mlflow local task supervisor")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--status-dir", required=True, type=Path)
    parser.add_argument("--lifeline", type=int)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--default-timeout", type=float)
    args = parser.parse_args(argv)
    supervisor = Supervisor(
        args.socket,
        args.status_dir,
        args.lifeline,
        warm=not args.cold,
        default_timeout=args.default_timeout,
    )
    try:
        return supervisor.serve()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(args.socket)


if __name__ == "__main__":
    sys.exit(main())
