"""What the fault tests and bench/faults.py share: the user pipeline they fault, and a real
`mlflow server` whose whole process group can be signalled (killed, paused, resumed)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from kfp_mlflow.local.server import LocalMlflowServer

# A user pipeline: a fan-out of tasks that each sleep and upload through the server, or one
# task the kernel kills.
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


class Server:
    """A real `mlflow server` whose whole process group can be signalled, restartable in place."""

    def __init__(self, directory: Path) -> None:
        self.server = LocalMlflowServer(directory)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def directory(self) -> Path:
        return self.server.directory

    def start(self) -> Server:
        self.server.start()
        return self

    def signal(self, signum: int) -> None:
        assert self.server.process is not None
        os.killpg(self.server.process.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.server.process is not None
        self.server.process.wait(timeout=10)
        time.sleep(0.5)  # let the kernel release the port

    def stop(self) -> None:
        process = self.server.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.signal(signal.SIGCONT)  # a paused server cannot stop
        self.server.stop()


# A user pipeline whose one step behaves as told, once per mode: the task-runtime faults.
RUNTIME_PIPELINE = """
from kfp import dsl
import kfp_mlflow

@kfp_mlflow.component
def behave(mode: str, metrics: dsl.Output[dsl.Metrics]) -> None:
    import os, signal, sys, threading, time
    if mode == "sleep60":
        time.sleep(60)
    elif mode == "forever":
        while True:
            time.sleep(1)
    elif mode == "stuck":  # as a deadlock in C code: no Python signal handler can run
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGTERM})
        while True:
            time.sleep(1)
    elif mode == "exit0":
        sys.exit(0)
    elif mode == "exit3":
        time.sleep(1)
        os._exit(3)
    elif mode in ("sigterm", "segv", "sigkill"):
        time.sleep(1)
        os.kill(os.getpid(), {"sigterm": signal.SIGTERM, "segv": signal.SIGSEGV,
                              "sigkill": signal.SIGKILL}[mode])
        time.sleep(5)
    elif mode == "fail":
        time.sleep(1)
        raise ValueError("wrong on purpose")
    elif mode == "nested":
        import mlflow
        mlflow.start_run(run_name="own-nested-run", nested=True)
        os._exit(3)
    elif mode == "thread":
        threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon
    elif mode == "count-threads":
        metrics.log_metric("python_threads", threading.active_count())
    elif mode == "hog":
        chunks = []
        while True:  # until the kernel's OOM killer steps in
            chunk = bytearray(64 * 1024 * 1024)
            chunk[::4096] = b"x" * len(chunk[::4096])
            chunks.append(chunk)

@dsl.pipeline(name="runtime")
def runtime(modes: list = ["sleep60"]) -> None:
    with kfp_mlflow.exit_handler():
        with dsl.ParallelFor(modes) as mode:
            behave(mode=mode).set_display_name("behave")
"""


def processes_of(project: Path) -> list[int]:
    """Live processes of local runs started in ``project`` (driver, supervisor, tasks): each
    carries its run's status directory, under the project, in its environment."""
    marker = f"KFP_MLFLOW_STATUS_DIR={project.resolve()}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and marker in environ:
            found.append(int(entry.name))
    return found
