"""The one place kfp-mlflow depends on the text of the command KFP generates for a component.

A tracked component must run :mod:`kfp_mlflow.runtime.executor` instead of
``kfp.dsl.executor_main``.
KFP's SDK has no supported way to choose the executor of a lightweight component (the
``@dsl.component`` arguments cover the image, packages and pip options; a ``target_image``
makes a containerized component, which ``kfp.local.SubprocessRunner`` refuses to run), so the
launcher script KFP writes is swapped for ours here, and nowhere else.

The swap is exact, not a search-and-replace: KFP's launcher must be, character for character,
:data:`KFP_LAUNCHER`, or :class:`KfpCommandChangedError` names the kfp release that changed it.
``tests/unit/test_kfp_command.py`` checks the same contract against the installed kfp; pyproject's
kfp range lies within the releases it was seen to pass on (the comment there lists them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_mlflow.runtime.executor import STEP_ARG, UNTRACKED_ARG

if TYPE_CHECKING:
    from kfp.dsl import structures

KFP_EXECUTOR = "kfp.dsl.executor_main"
OUR_EXECUTOR = "kfp_mlflow.runtime.executor"

# kfp/dsl/component_factory.py, _get_command_and_args_for_lightweight_component (2.14 to 2.17):
# ["sh", "-ec", <this launcher>, <the component's source>] + args; a pip install prefix
# (``packages_to_install``) comes before, never after.
_SHELL = ["sh", "-ec"]
_LAUNCHER = (
    "program_path=$(mktemp -d)\n"
    "\n"
    'printf "%s" "$0" > "$program_path/ephemeral_component.py"\n'
    "_KFP_RUNTIME=true python3 -m {executor}"
    "                         --component_module_path"
    '                         "$program_path/ephemeral_component.py"'
    '                         "$@"\n'
)
KFP_LAUNCHER = _LAUNCHER.format(executor=KFP_EXECUTOR)
# The comment keeps kfp's executor name in the script: kfp.local's SubprocessRunner runs a task
# only if its command mentions kfp's executor (its test for "lightweight Python component").
OUR_LAUNCHER = f"# {OUR_EXECUTOR} wraps {KFP_EXECUTOR}\n" + _LAUNCHER.format(executor=OUR_EXECUTOR)
KFP_ARGS = ["--executor_input", "{{$}}", "--function_to_execute"]


class KfpCommandChangedError(RuntimeError):
    """The installed kfp generates a component command this adapter was not written for."""

    def __init__(self, what: str) -> None:
        import kfp

        super().__init__(
            f"kfp {kfp.__version__} generates a lightweight component command kfp-mlflow does "
            f"not know ({what}); install a kfp release in kfp-mlflow's supported range "
            "(pyproject.toml) or adapt kfp_mlflow/dsl/kfp_command.py"
        )


def reroute_executor(spec: structures.ComponentSpec, *, step: str, track: bool) -> None:
    """Make the component run ``python3 -m kfp_mlflow.runtime.executor`` with kfp's arguments plus
    the
    step name (and ``--kfp_mlflow_untracked`` when ``track`` is off)."""
    container = spec.implementation.container
    if container is None or not container.command:
        raise KfpCommandChangedError("no container command")
    command = list(container.command)
    # The lightweight part is always last: [..pip install prefix.., "sh", "-ec", launcher, source]
    if len(command) < 4 or command[-4:-2] != _SHELL:
        raise KfpCommandChangedError(f"the command does not end in {_SHELL} launcher source")
    if command[-2] != KFP_LAUNCHER:
        raise KfpCommandChangedError(f"its launcher script is {command[-2]!r}")
    args = list(container.args or [])
    if args[: len(KFP_ARGS)] != KFP_ARGS or len(args) != len(KFP_ARGS) + 1:
        raise KfpCommandChangedError(f"its arguments are {args!r}")
    command[-2] = OUR_LAUNCHER
    container.command = command
    container.args = [*args, STEP_ARG, step] + ([] if track else [UNTRACKED_ARG])
