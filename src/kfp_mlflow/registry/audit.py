"""The audit trail of ``@champion``: one MLflow run per alias move, in one experiment.

Each move — by a pipeline's register step, a rollback or a manual approval — answers when (the
run's start time), what (model, from and to version), why (the policy's or the person's reason)
and by whom (the KFP run, or the user). Runs are immutable once ended and searchable in MLflow's
UI and API; ``kfp-mlflow history`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.tag_schema import TAG_AUDIT_MODEL
from kfp_mlflow.tracking.runs import get_or_create_experiment, mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient

AUDIT_EXPERIMENT = "kfp-mlflow-audit"
_MAX = 500


@dataclass(frozen=True)
class Move:
    at: datetime
    model: str
    action: str  # pipeline, rollback, promote
    from_version: str | None
    to_version: str
    reason: str
    actor: str
    run_id: str


def record_move(
    client: MlflowClient,
    model: str,
    *,
    from_version: str | None,
    to_version: str,
    action: str,
    reason: str,
    actor: str,
) -> str:
    """Record one alias move; returns the audit run's id."""
    from mlflow.entities import Param

    with mlflow_errors(f"record the move of @champion of {model!r} in the audit trail"):
        run = client.create_run(
            get_or_create_experiment(client, AUDIT_EXPERIMENT),
            run_name=f"{model}: v{from_version or '-'} -> v{to_version}",
            tags={TAG_AUDIT_MODEL: model},
        )
        client.log_batch(
            run.info.run_id,
            params=[
                Param("action", action),
                Param("from_version", from_version or ""),
                Param("to_version", to_version),
                Param("reason", reason[:_MAX]),
                Param("actor", actor[:_MAX] or "unknown"),
            ],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
    return str(run.info.run_id)


def history(client: MlflowClient, model: str) -> list[Move]:
    """Every recorded move of ``model``'s ``@champion``, oldest first.

    A model with no recorded move that the registry does not know either is a mistake in its
    name (:class:`ConfigError`), not an empty history."""
    with mlflow_errors(f"read the audit trail of {model!r}"):
        found = client.get_experiment_by_name(AUDIT_EXPERIMENT)
        escaped = model.replace("'", "\\'")
        runs = (
            []
            if found is None
            else client.search_runs(
                [found.experiment_id],
                filter_string=f"tags.`{TAG_AUDIT_MODEL}` = '{escaped}'",
                order_by=["attributes.start_time ASC"],
                max_results=10_000,
            )
        )
        if not runs:
            _require_registered(client, model)
    return [
        Move(
            at=datetime.fromtimestamp(run.info.start_time / 1000, UTC),
            model=model,
            action=run.data.params.get("action", ""),
            from_version=run.data.params.get("from_version") or None,
            to_version=run.data.params.get("to_version", ""),
            reason=run.data.params.get("reason", ""),
            actor=run.data.params.get("actor", ""),
            run_id=str(run.info.run_id),
        )
        for run in runs
    ]


def _require_registered(client: MlflowClient, model: str) -> None:
    from mlflow.exceptions import MlflowException

    from kfp_mlflow.registry.versions import is_missing

    try:
        client.get_registered_model(model)
    except MlflowException as error:
        if not is_missing(error):
            raise
        raise ConfigError(
            f"--model-name {model}: no registered model of that name at this tracking server",
            hint="check the name (the MLflow UI lists the registered models) and "
            "MLFLOW_TRACKING_URI",
        ) from None
