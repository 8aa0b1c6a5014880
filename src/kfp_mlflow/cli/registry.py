"""Commands on the registry: `history`, `rollback`, `promote` — audited moves of @champion."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kfp_mlflow.cli._app import app
from kfp_mlflow.core.settings import get_settings

ModelName = Annotated[str, typer.Option("--model-name", help="Registered model name.")]
Reason = Annotated[str, typer.Option("--reason", help="Why: recorded in the audit trail.")]


def _client() -> Any:
    from kfp_mlflow.local.runner import resolve_tracking_uri
    from kfp_mlflow.tracking.runs import tracking_client

    settings = get_settings()
    return tracking_client(
        settings.model_copy(update={"tracking_uri": resolve_tracking_uri(settings, create=False)})
    )


@app.command("history")
def show_history(model_name: ModelName) -> None:
    """Every move of @champion: when, from and to which version, why, by whom."""
    from kfp_mlflow.registry.audit import history

    moves = history(_client(), model_name)  # an unknown model: one line, exit 2
    if not moves:
        Console(highlight=False).print(f"{model_name}: @champion has never been set")
        return
    table = Table("when (UTC)", "action", "from", "to", "by", "why")
    for move in moves:
        table.add_row(
            f"{move.at:%Y-%m-%d %H:%M:%S}", move.action, move.from_version or "-",
            move.to_version, move.actor, move.reason,
        )  # fmt: skip
    Console(highlight=False).print(table)


@app.command()
def rollback(
    model_name: ModelName,
    reason: Reason,
    to: Annotated[
        str | None, typer.Option("--to", help="Version to restore (default: the previous one).")
    ] = None,
) -> None:
    """Move @champion back, demote the current one; later runs do not silently undo it."""
    from kfp_mlflow.registry.governance import rollback as roll_back

    move = roll_back(_client(), model_name, to=to, reason=reason, actor=get_settings().user)
    Console(highlight=False).print(
        f"@champion of {model_name}: v{move.from_version} -> v{move.to_version} "
        f"(v{move.from_version} demoted until approved again)"
    )


@app.command()
def promote(
    model_name: ModelName,
    reason: Reason,
    version: Annotated[str, typer.Option("--version", help="Version to make @champion.")],
) -> None:
    """Make a version @champion by hand (re-approves a demoted one)."""
    from kfp_mlflow.registry.governance import approve

    move = approve(_client(), model_name, version, reason=reason, actor=get_settings().user)
    Console(highlight=False).print(
        f"@champion of {model_name}: v{move.from_version or '-'} -> v{move.to_version}"
    )
