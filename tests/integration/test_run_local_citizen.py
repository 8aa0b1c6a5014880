"""`run_local` in a notebook or a service: called again and again (and from a worker thread), it
leaves the process's globals exactly as they were and writes no logging errors."""

from __future__ import annotations

import builtins
import logging
import os
import signal
import sys
import threading

import pytest

from kfp_mlflow.core.settings import Settings
from kfp_mlflow.dsl.pipeline_loading import load_pipeline
from kfp_mlflow.local.runner import run_local
from tests.support.faults import RUNTIME_PIPELINE


def _globals() -> dict[str, object]:
    root = logging.getLogger()
    return {
        "print": builtins.print,
        "stdout": sys.stdout,
        "stderr": sys.stderr,
        "root handlers": list(root.handlers),
        "root level": root.level,
        "environ": dict(os.environ),
        "sigint": signal.getsignal(signal.SIGINT),
        "sigterm": signal.getsignal(signal.SIGTERM),
    }


@pytest.mark.timeout(300)
def test_run_local_twice_and_from_a_thread_leaves_globals_as_they_were(
    mlflow_server, tmp_path, capfd
):
    (tmp_path / "runtime.py").write_text(RUNTIME_PIPELINE)
    pipeline = load_pipeline(f"{tmp_path / 'runtime.py'}:runtime")
    settings = Settings(
        MLFLOW_TRACKING_URI=mlflow_server,
        MLFLOW_EXPERIMENT_NAME="citizen",
        work_dir=tmp_path / ".kfp-mlflow",
    )
    before = _globals()
    arguments = {"modes": ["count-threads", "count-threads"]}
    first = run_local(pipeline, arguments, settings)
    second = run_local(pipeline, arguments, settings)
    in_thread: list[object] = []
    worker = threading.Thread(
        target=lambda: in_thread.append(run_local(pipeline, arguments, settings))
    )
    worker.start()
    worker.join(timeout=200)
    assert first.succeeded and second.succeeded, (first.error, second.error)
    assert len(in_thread) == 1 and in_thread[0].succeeded  # type: ignore[attr-defined]
    assert _globals() == before
    print("after the runs")
    logging.getLogger("citizen").warning("a warning after the runs")
    out, err = capfd.readouterr()
    assert "after the runs\n" in out  # not indented by kfp.local's print patch
    assert "Logging error" not in out + err
    assert "I/O operation on closed file" not in out + err
