"""Command: `predict` — batch (the batch_predict pipeline, locally) or micro-batch (`--watch`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kfp_mlflow.cli._app import app
from kfp_mlflow.core.exceptions import ConfigError, DriftError
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.runtime.task_records import TaskRecord


@app.command()
def predict(
    model_name: Annotated[
        str | None, typer.Option(help="Registered model (default: KFP_MLFLOW_MODEL_NAME).")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Score with this version.")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Score with the version this alias points at (champion).")
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="What to score: any --data `run` accepts.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Predictions file (batch) or directory (--watch; default DIR/_predictions)."
        ),
    ] = None,
    id_column: Annotated[
        list[str] | None, typer.Option(help="Key column copied to the predictions (repeatable).")
    ] = None,
    drift_threshold: Annotated[
        float, typer.Option(help="PSI above which a column counts as drifted (exit 10).")
    ] = 0.2,
    chunk_rows: Annotated[int, typer.Option(help="Rows scored at a time.")] = 100_000,
    watch: Annotated[
        Path | None, typer.Option(help="Score every new file in this directory, once.")
    ] = None,
    max_files_per_trigger: Annotated[int, typer.Option(help="Files per micro-batch.")] = 1,
    trigger_seconds: Annotated[
        float, typer.Option(help="Seconds between micro-batches (--watch).")
    ] = 1.0,
    until_idle: Annotated[
        bool, typer.Option(help="With --watch: stop when no new file is waiting.")
    ] = False,
) -> None:
    """Score a dataset with a registered version (resolved once from --alias, default
    @champion, or --version): predictions as Parquet, throughput and drift against the
    training data in MLflow. Exit 10 when the data drifted beyond --drift-threshold."""
    from kfp_mlflow.local.runner import resolve_tracking_uri

    if version and alias:
        raise ConfigError("--version and --alias: give one of them, not both")
    if (data is None) == (watch is None):
        raise ConfigError("predict: give --data (one batch) or --watch DIR (a stream)")
    if chunk_rows < 1:
        raise ConfigError(f"--chunk-rows: {chunk_rows} must be at least 1")
    settings = get_settings()
    settings = settings.model_copy(update={"tracking_uri": resolve_tracking_uri(settings)})
    name = model_name or settings.model_name
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if watch is not None:
        from kfp_mlflow.local.streaming import WatchOptions
        from kfp_mlflow.local.streaming import watch as run_watch

        options = WatchOptions(
            model_name=name, alias=alias or "", version=version or "",
            max_files_per_trigger=max_files_per_trigger, trigger_seconds=trigger_seconds,
            until_idle=until_idle, key_columns=tuple(id_column or ()), chunk_rows=chunk_rows,
        )  # fmt: skip
        target = output or watch / "_predictions"
        out.print(f"[bold]kfp-mlflow[/] predict --watch {watch} → {target}")
        count = run_watch(watch, target, options, settings, say=out.print)
        out.print(f"{count} file(s) scored")
        return
    assert data is not None
    _batch(out, name, version or "", alias or "champion", data, output, id_column or [],
           drift_threshold, chunk_rows)  # fmt: skip


def _batch(
    out: Console,
    name: str,
    version: str,
    alias: str,
    data: str,
    output: Path | None,
    keys: list[str],
    threshold: float,
    chunk_rows: int,
) -> None:
    from kfp_mlflow.core.contracts import Predictions
    from kfp_mlflow.local.runner import run_local
    from kfp_mlflow.pipelines.batch_predict import build_batch_predict_pipeline

    settings = get_settings()
    reference = f"models:/{name}/{version}" if version else f"models:/{name}@{alias}"
    out.print(f"[bold]kfp-mlflow[/] predict {data} with {reference}")
    arguments = {
        "model_name": name, "version": version, "alias": alias, "data": data,
        "id_columns": keys, "drift_threshold": threshold, "chunk_rows": chunk_rows,
    }  # fmt: skip
    result = run_local(build_batch_predict_pipeline(settings), arguments, settings)
    result.raise_for_failure()
    record = result.record(Predictions)
    path = predictions_path(result.tasks)
    # The scoring step succeeded, so it wrote both.
    assert record is not None
    assert path is not None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, output)
        path = output
    out.print(
        f"scored {record.rows:,} rows with {record.model_uri}"
        f"{f' (@{record.alias})' if record.alias else ''} in {record.seconds:.2f}s "
        f"({record.rows_per_second:,.0f} rows/s) → {path}"
    )
    if record.ignored_columns:
        out.print(
            f"ignored {len(record.ignored_columns)} column(s) the model does not use: "
            f"{', '.join(record.ignored_columns)}"
        )
    if not record.drift:
        out.print(f"drift: {record.drift_reference or 'not measured'}")
    else:
        top = sorted(record.drift.items(), key=lambda item: -item[1])[:5]
        out.print(
            f"drift (PSI vs {record.drift_reference}): "
            + ", ".join(f"{column} {value:.3f}" for column, value in top)
        )
    out.print(f"MLflow run {record.run_id}")
    if record.drift_detected:
        raise DriftError(
            f"drift above {record.drift_threshold:g} in: {', '.join(record.drifted)} "
            f"(predictions written to {path})",
            hint="retrain on recent data, or raise --drift-threshold",
        )


def predictions_path(tasks: list[TaskRecord]) -> Path | None:
    """The local file of the last ``predictions`` output a scoring task wrote."""
    from kfp_mlflow.core.contracts import Predictions
    from kfp_mlflow.runtime.task_records import SUCCEEDED

    for task in reversed(tasks):
        if task.state != SUCCEEDED:
            continue
        for output in task.outputs.values():
            if output.get("metadata", {}).get("contract") == Predictions.CONTRACT:
                uri = str(output["uri"])
                return Path(uri.removeprefix("file://"))
    return None
