"""Make any lightweight KFP component a tracked one: ``@kfp_mlflow.component``.

    import kfp_mlflow
    from kfp.dsl import Dataset, Input, Metrics, Output

    @kfp_mlflow.component
    def my_step(data: Input[Dataset], alpha: float, metrics: Output[Metrics]):
        run = kfp_mlflow.current_run()   # the task's MLflow child run
        ...
        metrics.log_metric("score", 0.9) # logged to MLflow too

What the factory adds, so that users never do it by hand:

* the task runs under :mod:`kfp_mlflow.runtime.executor`, which opens the MLflow child run under the
  pipeline's parent run, logs the inputs, logs ``Output[Metrics]`` values, ends the run FINISHED
  or FAILED, and honours ``MLFLOW_RUN_ID`` injected by KFP's own MLflow integration;
* hidden inputs carrying the KFP run and task identity, filled with KFP's placeholders every time
  the component is called in a pipeline;
* the cluster settings (tracking ConfigMap, credentials Secrets, image pull policy), applied to
  every task it creates (``kfp.local`` ignores them).

The base image defaults to the project image (``KFP_MLFLOW_IMAGE``), which holds kfp-mlflow and
kfp; ``install_kfp_package`` is off because the image already has kfp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kfp import dsl
from kfp.dsl import structures
from kfp.dsl.python_component import PythonComponent

from kfp_mlflow.dsl.kfp_command import reroute_executor
from kfp_mlflow.runtime.executor import IDENTITY_INPUTS

# The variable by which a task's own deadline reaches the local runtime (Settings.task_timeout).
TIMEOUT_ENV = "KFP_MLFLOW_TASK_TIMEOUT"

_PLACEHOLDERS = dict(
    zip(
        IDENTITY_INPUTS,
        (
            dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
        ),
        strict=True,
    )
)


class TrackedComponent(PythonComponent):  # type: ignore[misc]
    """A lightweight component whose tasks are tracked in MLflow (see the module docstring)."""

    #: Seconds each of its tasks may run (``component(timeout=...)``); None: the run's default.
    timeout: float | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> dsl.PipelineTask:
        from kfp_mlflow.dsl.platform import configure_task

        for name, placeholder in _PLACEHOLDERS.items():
            kwargs.setdefault(name, placeholder)
        task: dsl.PipelineTask = super().__call__(*args, **kwargs)
        if self.timeout is not None:
            set_timeout(task, self.timeout)
        return configure_task(task)


def set_timeout(task: dsl.PipelineTask, seconds: float) -> dsl.PipelineTask:
    """Give ``task`` a deadline of its own, which wins over the run-wide ``--task-timeout``.

    On a cluster it is the pod's ``activeDeadlineSeconds`` (``kfp.kubernetes.set_timeout``);
    locally the supervisor ends the task's process group when it passes (SIGTERM, then SIGKILL),
    and the run fails with ``step <name> timed out after <N>s`` (exit 11).
    """
    from kfp import kubernetes

    from kfp_mlflow.core.exceptions import ConfigError

    if not seconds > 0:
        raise ConfigError(f"set_timeout: {seconds!r} is not a positive number of seconds")
    kubernetes.set_timeout(task, math.ceil(seconds))
    task.set_env_variable(TIMEOUT_ENV, f"{seconds:g}")
    return task


def component(
    func: Callable[..., Any] | None = None,
    *,
    base_image: str | None = None,
    step: str | None = None,
    packages_to_install: list[str] | None = None,
    track: bool = True,
    timeout: float | None = None,
) -> Any:
    """Turn ``func`` into a tracked KFP component (usable bare or with arguments).

    ``step`` names the step in MLflow (``kfp_mlflow.step`` tag, default: the function's name);
    ``track=False`` keeps the identity inputs and cluster settings but opens no MLflow run (the
    exit handler uses it); ``timeout`` gives each of its tasks a deadline of its own (seconds,
    see :func:`set_timeout`; default: the run's ``--task-timeout``).
    """
    if func is None:
        return lambda f: component(
            f,
            base_image=base_image,
            step=step,
            packages_to_install=packages_to_install,
            track=track,
            timeout=timeout,
        )
    from kfp_mlflow.core.exceptions import ConfigError
    from kfp_mlflow.core.settings import get_settings

    clashes = set(IDENTITY_INPUTS) & set(func.__code__.co_varnames[: func.__code__.co_argcount])
    if clashes:
        raise ConfigError(
            f"component {func.__name__}: parameter {sorted(clashes)[0]!r} is reserved",
            hint="kfp_mlflow.component passes the KFP identity itself; rename the parameter",
        )
    plain = dsl.component(
        func=func,
        base_image=base_image or get_settings().image,
        packages_to_install=packages_to_install,
        install_kfp_package=False,
    )
    spec = plain.component_spec
    reroute_executor(spec, step=step or func.__name__, track=track)
    for name in IDENTITY_INPUTS:
        spec.inputs = {**(spec.inputs or {}), name: structures.InputSpec(type="String")}
    tracked = TrackedComponent(component_spec=spec, python_func=func)
    tracked.timeout = timeout
    return tracked
