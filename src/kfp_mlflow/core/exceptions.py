"""Every error kfp-mlflow raises on purpose. Each says what was wrong and how to fix it."""

from __future__ import annotations


class KfpMlflowError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line and exits non-zero."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} — {hint}" if hint else message)


class ConfigError(KfpMlflowError):
    """A setting, flag or pipeline parameter has a value that cannot work."""

    exit_code = 2


class ContractError(ConfigError):
    """An artifact between two steps lacks the record its consumer needs (a wiring error)."""


class DataError(KfpMlflowError):
    """The input dataset is missing, unreadable or unfit for training."""

    exit_code = 3


class TrackingError(KfpMlflowError):
    """The MLflow tracking server is unreachable or refused a request."""

    exit_code = 4


class PromotionError(KfpMlflowError):
    """Registering or promoting a model version failed."""

    exit_code = 5


class GateError(KfpMlflowError):
    """No candidate passed the quality gate (thresholds and baseline): nothing was registered."""

    exit_code = 8


class ReproducibilityError(KfpMlflowError):
    """A rebuilt model's outputs differ from the registered version's."""

    exit_code = 9


class PipelineRunError(KfpMlflowError):
    """A pipeline run ended in failure; the message names the failed task."""

    exit_code = 6


class StepFailedError(PipelineRunError):
    """A step of a pipeline run failed; carries the step's own exit code (3 for bad data...)."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 6) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class KfpApiError(KfpMlflowError):
    """The Kubeflow Pipelines API is unreachable, refused the credentials or rejected a request."""

    exit_code = 7


class StepTimedOutError(StepFailedError):
    """A step ran past its deadline (``--task-timeout`` / its component's timeout) and was ended."""

    EXIT_CODE = 11

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=self.EXIT_CODE)


class InterruptedRunError(PipelineRunError):
    """A local run was stopped (Ctrl-C: 130, SIGTERM: 143); every task was ended and its open
    MLflow runs marked KILLED."""

    exit_code = 130

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 130) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class PipelineStoppedError(PipelineRunError):
    """A task refused to start because its pipeline run had already failed or been stopped."""


class DriftError(KfpMlflowError):
    """Scoring succeeded (predictions written), but the data drifted from the training data
    beyond the declared threshold: a schedule can trigger retraining on this exit code."""

    exit_code = 10
