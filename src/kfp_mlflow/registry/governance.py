"""A person's decisions about ``@champion``: roll back, or approve a version by hand.

Both are sticky against automatic promotion (see ``promotion.ManualChoice``): the chosen version
is pinned and only versions registered afterwards can displace it through the normal gate, so a
later pipeline run never silently undoes a rollback. A rolled-back version is demoted and stays
ineligible until someone approves it again. Every move is in the audit trail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kfp_mlflow.core.exceptions import ConfigError, PromotionError
from kfp_mlflow.core.tag_schema import TAG_DEMOTED, TAG_FLOOR, TAG_PINNED
from kfp_mlflow.registry.audit import Move, history, record_move
from kfp_mlflow.registry.promotion import _set_alias, _versions, current_champion
from kfp_mlflow.tracking.runs import mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient


def rollback(client: MlflowClient, name: str, *, to: str | None, reason: str, actor: str) -> Move:
    """Move ``@champion`` back (default: to the champion before the current one) and demote the
    current one."""
    _require(reason)
    with mlflow_errors(f"roll back @champion of {name!r}"):
        champion = current_champion(client, name)
        if champion is None:
            raise PromotionError(f"{name!r} has no @champion to roll back")
        target = to or _previous(client, name, champion.version)
        if target == champion.version:
            raise ConfigError(f"--to: v{target} is already @champion of {name!r}")
        _pin(client, name, target)
        client.set_model_version_tag(name, champion.version, TAG_DEMOTED, "true")
        _set_alias(client, name, target)
    record_move(
        client, name, from_version=champion.version, to_version=target,
        action="rollback", reason=reason, actor=actor,
    )  # fmt: skip
    return history(client, name)[-1]


def approve(client: MlflowClient, name: str, version: str, *, reason: str, actor: str) -> Move:
    """Make ``version`` the champion by hand (re-approving a demoted one)."""
    _require(reason)
    with mlflow_errors(f"promote v{version} of {name!r}"):
        champion = current_champion(client, name)
        _pin(client, name, version)
        client.delete_model_version_tag(name, version, TAG_DEMOTED)
        _set_alias(client, name, version)
    record_move(
        client, name, from_version=champion.version if champion else None, to_version=version,
        action="promote", reason=reason, actor=actor,
    )  # fmt: skip
    return history(client, name)[-1]


def _pin(client: MlflowClient, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise ConfigError(f"version: {name!r} has no version {version}") from None
    newest = max((int(v.version) for v in _versions(client, name)), default=0)
    # Floor first: a promoter reading between the two writes sees the old pin with the new
    # floor, which only narrows what it may choose.
    client.set_registered_model_tag(name, TAG_FLOOR, str(newest))
    client.set_registered_model_tag(name, TAG_PINNED, version)


def _previous(client: MlflowClient, name: str, current: str) -> str:
    for move in reversed(history(client, name)):
        if move.to_version == current and move.from_version:
            return move.from_version
    raise ConfigError(
        f"no earlier @champion of {name!r} is recorded", hint="name one with --to VERSION"
    )


def _require(reason: str) -> None:
    if not reason.strip():
        raise ConfigError("--reason: say why (it goes in the audit trail)")
