"""Batch prediction: resolve a registered version once, score a dataset, measure drift."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kfp_mlflow.core.contracts import Predictions, TaskType
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.core.tag_schema import (
    TAG_DATASET_DIGEST,
    TAG_DRIFT,
    TAG_DRIFTED,
    TAG_RECIPE,
    TAG_SCORED_DATA,
    TAG_SCORED_FROM,
    TAG_SCORED_MODEL,
)
from kfp_mlflow.data.drift import DEFAULT_THRESHOLD, DriftMonitor, DriftReport, Reference, plot
from kfp_mlflow.serving.scoring import (
    DEFAULT_CHUNK_ROWS,
    LoadedModel,
    ResolvedModel,
    ScoreResult,
    load_model,
    read_chunks,
    resolve_model,
    score,
)
from kfp_mlflow.tracking.runs import TaskRun


def run_resolve(run: TaskRun, *, model_name: str, version: str, alias: str) -> ResolvedModel:
    """The one immutable version this batch is scored with (``version``, else ``@alias``)."""
    resolved = resolve_model(run.client, model_name, version=version, alias=alias)
    run.set_tags({TAG_SCORED_MODEL: resolved.uri, TAG_SCORED_FROM: resolved.reference})
    return resolved


def training_reference(
    model: LoadedModel, resolved: ResolvedModel, settings: Settings | None = None
) -> Reference | str:
    """The training profile of ``resolved``, rebuilt from its recipe's data snapshot and split;
    a sentence saying why when there is none (a version registered without a recipe)."""
    from kfp_mlflow.data.datasets import as_model_input, read_dataset, split
    from kfp_mlflow.models.recipes import parse_recipe

    raw = resolved.tags.get(TAG_RECIPE)
    if not raw:
        return f"unavailable: {resolved.uri} has no recipe ({TAG_RECIPE}) naming its training data"
    recipe = parse_recipe(raw, resolved.uri)
    frame = read_dataset(recipe.data, settings or get_settings())
    task: TaskType = "classification" if recipe.task == "classification" else "regression"
    train = split(frame, recipe.target, task, recipe.seed, recipe.test_size).train
    features = train[[c.name for c in model.inputs if c.name in train.columns]]
    predictions = model.predictor.predict(as_model_input(features))
    return Reference.build(features, predictions, source=f"train split of {recipe.data}")


@dataclass(frozen=True)
class BatchResult:
    predictions: Predictions
    drift: DriftReport | None
    scored: ScoreResult


def score_version(
    resolved: ResolvedModel,
    model: LoadedModel,
    *,
    data: str,
    output: Path,
    key_columns: list[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    reference: Reference | str | None = None,
    drift_threshold: float = DEFAULT_THRESHOLD,
    run_id: str = "",
    settings: Settings | None = None,
) -> BatchResult:
    """Score ``data`` with ``model`` into ``output``; drift against ``reference`` if given.
    No MLflow writes: the batch step and the streaming loop log the result their own way."""
    monitor = DriftMonitor(reference) if isinstance(reference, Reference) else None
    scored = score(
        model,
        read_chunks(data, settings, chunk_rows),
        output,
        source=data,
        keys=key_columns,
        observe=monitor.observe if monitor is not None else None,
    )
    report = monitor.report(drift_threshold) if monitor is not None else None
    record = Predictions(
        model_name=resolved.name,
        version=resolved.version,
        alias=resolved.alias,
        model_uri=resolved.uri,
        task="classification" if model.task == "classification" else "regression",
        data=data,
        digest=scored.digest,
        rows=scored.rows,
        seconds=round(scored.seconds, 4),
        rows_per_second=round(scored.rows_per_second, 1),
        columns=scored.columns,
        key_columns=key_columns,
        ignored_columns=scored.check.ignored,
        drift=report.psi if report else {},
        unseen=report.unseen if report else {},
        drift_threshold=drift_threshold if report else None,
        drift_detected=report.detected if report else False,
        drifted=report.drifted if report else [],
        drift_reference=report.reference
        if report
        else (reference if isinstance(reference, str) else None),
        run_id=run_id,
    )
    return BatchResult(record, report, scored)


def run_batch_predict(
    run: TaskRun,
    *,
    model_name: str,
    version: str,
    alias: str,
    data: str,
    key_columns: list[str],
    drift_threshold: float,
    chunk_rows: int,
    output_path: str,
    report_path: str,
    settings: Settings | None = None,
) -> BatchResult:
    """Score ``data`` with ``models:/<model_name>/<version>`` (already resolved, immutable)
    and log what scored what, how fast, and how far the data drifted from training."""
    settings = settings or get_settings()
    resolved = resolve_model(run.client, model_name, version=version)
    resolved = ResolvedModel(resolved.name, resolved.version, alias or None, resolved.run_id,
                             resolved.tags)  # fmt: skip
    model = load_model(resolved.uri, settings.tracking_uri)
    reference = training_reference(model, resolved, settings)
    result = score_version(
        resolved,
        model,
        data=data,
        output=Path(output_path),
        key_columns=key_columns,
        chunk_rows=chunk_rows,
        reference=reference,
        drift_threshold=drift_threshold,
        run_id=run.run_id,
        settings=settings,
    )
    record = result.predictions
    run.set_tags(
        {
            TAG_SCORED_MODEL: resolved.uri,
            TAG_SCORED_FROM: resolved.reference,
            TAG_SCORED_DATA: data,
            TAG_DATASET_DIGEST: record.digest,
            TAG_DRIFT: "unavailable"
            if result.drift is None
            else str(record.drift_detected).lower(),
            TAG_DRIFTED: ", ".join(record.drifted) or "none",
        }
    )
    run.log_metrics(
        {
            "rows": record.rows,
            "seconds": record.seconds,
            "rows_per_second": record.rows_per_second,
            "ignored_columns": len(record.ignored_columns),
            **(result.drift.metrics() if result.drift else {}),
        }
    )
    if record.ignored_columns:
        run.set_tags({"kfp_mlflow.ignored_columns": ", ".join(record.ignored_columns)})
    page = Path(report_path)
    if result.drift is None:
        page.write_text(f"<html><body><p>drift: {reference}</p></body></html>")
    else:
        with tempfile.TemporaryDirectory() as folder:
            png, html = Path(folder) / "drift.png", Path(folder) / "drift.html"
            plot(result.drift, f"drift of {data.rsplit('/', 1)[-1]} vs {resolved.uri}", png, html)
            shutil.copyfile(html, page)
            run.log_artifact(str(png), "drift")
            run.log_artifact(str(html), "drift")
    return result
