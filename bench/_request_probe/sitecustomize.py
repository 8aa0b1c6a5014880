"""Loaded by every pipeline task process during the benchmark (via PYTHONPATH), never otherwise.

Counts the HTTP requests a task makes to MLflow and how long they take, and the process's
lifetime, and appends one JSON line per process to $KFP_MLFLOW_BENCH_PROBE. Warm tasks are
forked from the supervisor (which loads this too): counters restart at the fork and the line is
written at the task's ``os._exit``.
"""

import atexit
import json
import os
import sys
import time

_stats = {"requests": 0, "request_seconds": 0.0, "started": time.perf_counter()}
_target = os.environ.get("KFP_MLFLOW_BENCH_PROBE")


def _install() -> None:
    import requests

    original = requests.Session.request

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            _stats["requests"] += 1
            _stats["request_seconds"] += time.perf_counter() - began

    requests.Session.request = counted  # type: ignore[method-assign]


def _task_name() -> str:
    # The kfp executor gets its executor input as JSON on the command line; the output file
    # path ends in <task>/executor_output.json.
    for argument in sys.argv:
        if "executor_output.json" in argument:
            marker = argument.split("executor_output.json")[0].rstrip('/\\"')
            return marker.rsplit("/", 1)[-1]
    return ""


def _report() -> None:
    name = _task_name()
    if not name or not _target:
        return
    with open(_target, "a") as out:
        out.write(
            json.dumps(
                {
                    "task": name,
                    "seconds": time.perf_counter() - _stats["started"],
                    "requests": _stats["requests"],
                    "request_seconds": _stats["request_seconds"],
                }
            )
            + "\n"
        )


def _forked() -> None:
    """A warm task is forked from the supervisor: count from the fork."""
    _stats.update(requests=0, request_seconds=0.0, started=time.perf_counter())


def _exit_reporting(code: int) -> None:
    # A forked task ends with os._exit, which runs no atexit handler.
    _report()
    _os_exit(code)


if _target:
    _install()
    atexit.register(_report)
    os.register_at_fork(after_in_child=_forked)
    _os_exit = os._exit
    os._exit = _exit_reporting
