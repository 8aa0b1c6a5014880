"""The in-task entry point of every ``kfp_mlflow.component``: kfp's executor, wrapped in tracking.

A component made with :func:`kfp_mlflow.component` runs ``python3 -m kfp_mlflow.executor``
instead of ``python3 -m kfp.dsl.executor_main``, with the same arguments. Before the user's
function runs, this opens the task's MLflow child run (under the pipeline's parent run, found or
created by KFP run id) and logs the task's input parameters; after it, it logs the numbers of
every ``Output[Metrics]`` and ends the run FINISHED, or FAILED with the error. The function can
log more through :func:`kfp_mlflow.current_run`. With ``KFP_MLFLOW_STATUS_DIR`` set (local runs)
it also writes the task's status record for the runner.

The hidden inputs ``kfp_run_id``, ``kfp_run_name`` and ``kfp_task_name`` carry the KFP identity
(placeholders the factory fills in); the user's function never sees them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from kfp_mlflow.tag_schema import TAG_RUN_NAME

IDENTITY_INPUTS = ("kfp_run_id", "kfp_run_name", "kfp_task_name")
STEP_ARG = "--kfp_mlflow_step"
UNTRACKED_ARG = "--kfp_mlflow_untracked"
_METRICS_SCHEMA = "system.Metrics"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="kfp-mlflow tracked component executor")
    parser.add_argument("--component_module_path")
    parser.add_argument("--function_to_execute", required=True)
    parser.add_argument("--executor_input", required=True)
    parser.add_argument(STEP_ARG, default="")
    parser.add_argument(UNTRACKED_ARG, action="store_true")
    args, _ = parser.parse_known_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="[kfp-mlflow] %(message)s")
    sys.exit(execute(args))


def execute(args: argparse.Namespace) -> int:
    from kfp.dsl import executor as kfp_executor
    from kfp.dsl import utils

    from kfp_mlflow.exceptions import KfpMlflowError, PipelineStoppedError
    from kfp_mlflow.settings import get_settings
    from kfp_mlflow.task_records import (
        FAILED,
        SUCCEEDED,
        Stop,
        TaskError,
        TaskRecord,
        peak_rss_mb,
    )
    from kfp_mlflow.tracking import KfpContext, kfp_identity

    executor_input = json.loads(args.executor_input)
    parameters: dict[str, Any] = executor_input.get("inputs", {}).get("parameterValues", {})
    kfp = KfpContext(
        run_id=str(parameters.get("kfp_run_id") or "unknown"),
        run_name=str(parameters.get("kfp_run_name") or ""),
        task_name=str(parameters.get("kfp_task_name") or ""),
    )
    step = args.kfp_mlflow_step or args.function_to_execute
    settings = get_settings()
    status_dir = Path(settings.status_dir) if settings.status_dir else None
    record = TaskRecord(task=kfp.task_name or step, step=step, kfp_run_id=kfp.run_id)
    stop = Stop.load(status_dir) if status_dir else None
    heartbeat = _Heartbeat(record, status_dir) if status_dir else None
    if heartbeat:
        heartbeat.start()
    try:
        # A task of this run already failed: do nothing (and, if the tracking server is what
        # failed, do not wait for it again: the runner's ledger closes the runs later).
        if stop is not None and (not args.kfp_mlflow_untracked or stop.exit_code == 4):
            raise PipelineStoppedError(f"not starting {step}: step {stop.task} already failed")
        module_path = Path(args.component_module_path)
        module = utils.load_module(
            module_name=module_path.stem, module_directory=module_path.parent
        )
        executor = kfp_executor.Executor(
            executor_input=executor_input,
            function_to_execute=getattr(module, args.function_to_execute),
        )
        with kfp_identity(kfp):
            if args.kfp_mlflow_untracked:
                executor.execute()
            else:
                _execute_tracked(executor, step, kfp, parameters, record)
        record.state = SUCCEEDED
        record.outputs = {
            name: {"uri": artifact.uri, "metadata": dict(artifact.metadata)}
            for name, artifact in executor.output_artifacts.items()
        }
        code = 0
    except BaseException as error:
        traceback.print_exc()
        is_ours = isinstance(error, KfpMlflowError)
        code = error.exit_code if is_ours else 6  # type: ignore[attr-defined]
        if isinstance(error, KeyboardInterrupt):
            code = 130
        record.state = FAILED
        record.error = TaskError(
            error_class=type(error).__name__,
            message=error.message if is_ours else str(error) or type(error).__name__,  # type: ignore[attr-defined]
            hint=error.hint if is_ours else None,  # type: ignore[attr-defined]
            exit_code=code,
        )
        print(f"kfp-mlflow: step {step} failed: {record.error.message}", file=sys.stderr)
    if heartbeat:
        heartbeat.stop()
    record.ended = time.time()
    record.peak_rss_mb = round(peak_rss_mb(), 1)
    if status_dir:
        record.save(status_dir)
    return code


class _Heartbeat:
    """Saves the record every few seconds with the peak memory so far: if the kernel kills the
    task (SIGKILL, out of memory), the runner still knows how much it had grown."""

    def __init__(self, record: Any, directory: Path, every: float = 2.0) -> None:
        import threading

        self._record, self._directory, self._every = record, directory, every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._record.save(self._directory)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        import contextlib

        from kfp_mlflow.task_records import peak_rss_mb

        while not self._done.wait(self._every):
            self._record.peak_rss_mb = round(peak_rss_mb(), 1)
            with contextlib.suppress(Exception):  # the record changed under us: next beat
                self._record.save(self._directory)


def _execute_tracked(
    executor: Any, step: str, kfp: Any, parameters: dict[str, Any], record: Any
) -> None:
    from kfp_mlflow.tracking import task_run

    with task_run(step=step, kfp=kfp) as run:
        record.mlflow_run_id = run.run_id
        run.log_params({k: v for k, v in parameters.items() if k not in IDENTITY_INPUTS})
        executor.execute()
        for artifact in executor.output_artifacts.values():
            if artifact.schema_title == _METRICS_SCHEMA:
                run.log_metrics(
                    {
                        key: value
                        for key, value in artifact.metadata.items()
                        if isinstance(value, int | float) and not isinstance(value, bool)
                    }
                )
        record.label = run.tags.get(TAG_RUN_NAME, "")


if __name__ == "__main__":
    main()
