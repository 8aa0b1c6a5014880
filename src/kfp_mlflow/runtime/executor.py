"""The in-task entry point of every ``kfp_mlflow.component``: kfp's executor, wrapped in tracking.

A component made with :func:`kfp_mlflow.component` runs ``python3 -m kfp_mlflow.runtime.executor``
instead of ``python3 -m kfp.dsl.executor_main``, with the same arguments. Before the user's
function runs, this opens the task's MLflow child run (under the pipeline's parent run, found or
created by KFP run id) and logs the task's input parameters; after it, it logs the numbers of
every ``Output[Metrics]`` (also when the function raised: the value that explains a failure
reaches MLflow) and ends the run FINISHED, or FAILED with the error. The function can log more
through :func:`kfp_mlflow.current_run`. With ``KFP_MLFLOW_STATUS_DIR`` set (local runs) it also
writes the task's status record for the runner.

In a local run with a task supervisor (``KFP_MLFLOW_SUPERVISOR``), this process is only the
supervisor's client: it hands the task over and relays its exit status
(:mod:`kfp_mlflow.runtime.supervisor`).

**No threads.** The executor starts no background thread, and nothing here runs outside the
main thread. Python holds its global import lock while it asks each ``sys.meta_path`` finder for
a module, and MLflow's finder takes MLflow's own import-hook lock, under which
``mlflow.models.evaluate`` imports scikit-learn: any second thread that imported a new module
at that moment deadlocked the task for ever (a heartbeat thread's ``import resource`` did, in
7 of 8 second runs). What used to need a heartbeat (the peak memory of a task the kernel kills)
is now measured from outside, by the supervisor's ``wait4``. Deadlines use ``SIGALRM``, whose
handler runs in the main thread.

The hidden inputs ``kfp_run_id``, ``kfp_run_name`` and ``kfp_task_name`` carry the KFP identity
(placeholders the factory fills in); the user's function never sees them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from kfp_mlflow.core.tag_schema import TAG_RUN_NAME
from kfp_mlflow.runtime.supervisor import SOCKET_ENV

IDENTITY_INPUTS = ("kfp_run_id", "kfp_run_name", "kfp_task_name")
STEP_ARG = "--kfp_mlflow_step"
UNTRACKED_ARG = "--kfp_mlflow_untracked"
_METRICS_SCHEMA = "system.Metrics"
_EPHEMERAL_MODULE = "ephemeral_component.py"


class TaskSignalled(KeyboardInterrupt):
    """The task was told to end (SIGTERM, SIGHUP: by a person, the runner or kfp.local): an
    interrupt, so its runs end KILLED."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")


class TaskTimedOut(BaseException):
    """The task ran past its deadline (``KFP_MLFLOW_TASK_TIMEOUT``)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g}s")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    socket_path = os.environ.get(SOCKET_ENV)  # the one documented runtime variable read here
    if socket_path:
        from kfp_mlflow.runtime.supervisor import delegate

        sys.exit(delegate(socket_path, argv))
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

    from kfp_mlflow.core.exceptions import KfpMlflowError, PipelineStoppedError
    from kfp_mlflow.core.settings import get_settings
    from kfp_mlflow.runtime.task_records import FAILED, SUCCEEDED, Stop, TaskError, TaskRecord
    from kfp_mlflow.tracking.runs import KfpContext, kfp_identity

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
    record = TaskRecord(
        task=kfp.task_name or step,
        step=step,
        kfp_run_id=kfp.run_id,
        timeout=settings.task_timeout,
    )
    if status_dir:
        record.save(status_dir)
    previous = _arm(settings.task_timeout)
    try:
        # A task of this run already failed: do nothing (and, if the tracking server is what
        # failed, do not wait for it again: the runner's ledger closes the runs later).
        stop = Stop.load(status_dir) if status_dir else None
        if stop is not None and (not args.kfp_mlflow_untracked or stop.exit_code == 4):
            raise PipelineStoppedError(f"not starting {step}: step {stop.task} already failed")
        module = _load_component_module(Path(args.component_module_path), utils)
        executor = kfp_executor.Executor(
            executor_input=executor_input,
            function_to_execute=getattr(module, args.function_to_execute),
        )
        with kfp_identity(kfp):
            if args.kfp_mlflow_untracked:
                _call(executor, step)
            else:
                _execute_tracked(executor, step, kfp, parameters, record)
        record.state = SUCCEEDED
        record.outputs = {
            name: {"uri": artifact.uri, "metadata": dict(artifact.metadata)}
            for name, artifact in executor.output_artifacts.items()
        }
        code = 0
    except BaseException as error:
        _disarm(previous)
        traceback.print_exc()
        code, message, hint = _verdict(error, KfpMlflowError)
        record.state = FAILED
        record.error = TaskError(
            error_class=type(error).__name__, message=message, hint=hint, exit_code=code
        )
        print(f"kfp-mlflow: step {step} failed: {message}", file=sys.stderr)
    _disarm(previous)
    record.ended = time.time()
    if status_dir:
        record.save(status_dir)
    return code


def _verdict(error: BaseException, ours: type[Any]) -> tuple[int, str, str | None]:
    """The CLI's exit code, a one-line message and a hint for how the task ended."""
    from kfp_mlflow.core.exceptions import StepTimedOutError

    if isinstance(error, TaskTimedOut):
        hint = "raise the step's timeout (--task-timeout, KFP_MLFLOW_TASK_TIMEOUT) if it needs it"
        return StepTimedOutError.EXIT_CODE, str(error), hint
    if isinstance(error, TaskSignalled):
        return 6, str(error), None
    if isinstance(error, KeyboardInterrupt):
        return 130, "interrupted (SIGINT)", None
    if isinstance(error, ours):
        return int(error.exit_code), str(error.message), error.hint
    return 6, str(error) or type(error).__name__, None


def _arm(timeout: float | None) -> dict[int, Any]:
    """Turn SIGTERM/SIGHUP and the deadline into exceptions raised in the main thread, so the
    task's runs end KILLED or FAILED with the reason; the supervisor's SIGKILL stays the
    backstop for a task stuck where Python cannot act on a signal."""
    previous: dict[int, Any] = {}

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise TaskSignalled(signum)

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TaskTimedOut(float(timeout or 0))

    if threading.current_thread() is not threading.main_thread():
        return previous  # an in-process test harness: no signals to take
    for signum in (signal.SIGTERM, signal.SIGHUP):
        previous[signum] = signal.signal(signum, terminated)
    if timeout:
        previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    return previous


def _disarm(previous: dict[int, Any]) -> None:
    if signal.SIGALRM in previous:
        signal.setitimer(signal.ITIMER_REAL, 0)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    previous.clear()


def _load_component_module(path: Path, utils: Any) -> Any:
    """The component's code, then its temporary folder removed (kfp's launcher script writes
    it to a fresh ``mktemp -d`` folder per task and never deletes it)."""
    module = utils.load_module(module_name=path.stem, module_directory=path.parent)
    folder = path.parent
    if path.name == _EPHEMERAL_MODULE and folder.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)
    return module


def _call(executor: Any, step: str) -> None:
    """Run the user's function; a ``sys.exit`` inside it is a verdict, not a crash."""
    from kfp_mlflow.core.exceptions import ContractError, StepFailedError

    try:
        executor.execute()
    except SystemExit as done:
        if done.code in (None, 0):
            raise ContractError(
                f"step {step} called sys.exit(0) before returning, so its outputs were "
                "never written",
                hint="return from the step function instead of exiting",
            ) from None
        raise StepFailedError(f"step {step} exited with status {done.code}") from None


def _execute_tracked(
    executor: Any, step: str, kfp: Any, parameters: dict[str, Any], record: Any
) -> None:
    from kfp_mlflow.tracking.runs import task_run

    with task_run(step=step, kfp=kfp) as run:
        record.mlflow_run_id = run.run_id
        run.log_params({k: v for k, v in parameters.items() if k not in IDENTITY_INPUTS})
        try:
            _call(executor, step)
        finally:
            # Also on failure: a metric the step logged before raising may explain why.
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
