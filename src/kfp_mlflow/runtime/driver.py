"""The driver of a local run: kfp.local executing one compiled pipeline, in a process of its own.

Why a process of its own: kfp.local changes process-wide state while it runs — it patches
``builtins.print`` to indent task logs (and, when tasks overlap on its threads, can leave it
patched), binds a logging handler to the stream current at ``local.init``, and passes its own
``os.environ`` to every task. Run in the caller (a notebook, a service) that leaks into the
caller; run here, it ends with this process. The driver is started in a session of its own, so
every process kfp.local spawns (``sh``, the executor clients) is in the driver's process group,
which the caller can end as one; and it watches a *lifeline* pipe from the caller: at EOF (the
caller died, however) it ends that group, containers of a Docker run included.

    python -m kfp_mlflow.runtime.driver --root RUN_DIR [--lifeline FD]

It is started early, imports kfp while the caller still checks arguments and starts the server,
then reads one JSON line on stdin — the compiled spec and arguments to run, the runner
(``subprocess`` or ``docker`` with its options) and the tasks' environment — or EOF (nothing to
run). Exit status 0 when the pipeline succeeded, 1 when kfp.local reported a failed task.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

#: Label on every container of a Docker run, so that the run can end them all.
RUN_LABEL = "kfp-mlflow.run"


def kill_containers(run: str) -> int:
    """Kill the containers of local run ``run`` (Docker runner); how many were running."""
    try:
        import docker

        client = docker.from_env()
        containers = client.containers.list(filters={"label": f"{RUN_LABEL}={run}"})
    except Exception:
        return 0
    for container in containers:
        with contextlib.suppress(Exception):
            container.kill()
    return len(containers)


def _watch_lifeline(fd: int, run: str) -> None:
    """Block until the caller's end of the pipe closes, then end this process group."""

    def wait() -> None:
        while True:
            try:
                if not os.read(fd, 64):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        kill_containers(run)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=wait, name="kfp-mlflow-lifeline", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="kfp-mlflow local run driver")
    parser.add_argument("--root", required=True)
    parser.add_argument("--lifeline", type=int)
    args = parser.parse_args(argv)
    run = Path(args.root).name
    if args.lifeline is not None:
        _watch_lifeline(args.lifeline, run)

    from kfp import components, local

    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the caller found nothing to run (bad arguments, no server)
    order = json.loads(line)
    # This process exists to run this pipeline: its environment is the tasks' environment
    # (kfp.local hands its own to every task).
    os.environ.update(order["env"])
    runner: Any
    if order["runner"] == "docker":
        options = dict(order["docker"])
        options.setdefault("labels", {})[RUN_LABEL] = run
        runner = local.DockerRunner(**options)
    else:
        runner = local.SubprocessRunner(use_venv=False)
    with warnings.catch_warnings():
        # kfp warns that the project image is not a Python image; locally that is the point.
        warnings.filterwarnings("ignore", message=".*non-Python base image.*")
        local.init(runner=runner, pipeline_root=args.root, raise_on_error=True)
        pipeline = components.load_component_from_file(order["spec"])
        try:
            pipeline(**json.loads(Path(order["arguments"]).read_text()))
        except RuntimeError as error:  # kfp.local: a task ended in FAILURE
            print(f"kfp-mlflow driver: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
