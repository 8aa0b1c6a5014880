"""`resolve_model` and `batch_predict`: score a dataset with one registered version."""

from kfp.dsl import HTML, Dataset, Metrics, Output


def resolve_model(model_name: str, version: str, alias: str) -> str:
    """The version to score with: ``version`` if given, else the one ``@alias`` points at now.
    Resolved once per pipeline run, so a retried scoring task uses the same version."""
    from kfp_mlflow.steps.batch_predict import run_resolve
    from kfp_mlflow.tracking.runs import current_run

    return run_resolve(current_run(), model_name=model_name, version=version, alias=alias).version


def batch_predict(
    model_name: str,
    version: str,
    requested_version: str,
    alias: str,
    data: str,
    id_columns: list,
    drift_threshold: float,
    chunk_rows: int,
    predictions: Output[Dataset],
    drift_report: Output[HTML],
    metrics: Output[Metrics],
) -> None:
    """``predictions`` (Parquet: keys or ``row``, ``prediction``, ``probability_<class>``) gets a
    ``kfp_mlflow.predictions/v1`` record: the version, the data's digest, rows, throughput and
    drift against the version's training data (also ``drift_report`` and MLflow). ``version``
    is the resolved one; ``requested_version`` what the user asked for ("" for the alias)."""
    from kfp_mlflow.steps.batch_predict import run_batch_predict
    from kfp_mlflow.tracking.runs import current_run

    result = run_batch_predict(
        current_run(),
        model_name=model_name,
        version=version,
        alias="" if requested_version else alias,
        data=data,
        key_columns=[str(column) for column in id_columns],
        drift_threshold=drift_threshold,
        chunk_rows=chunk_rows,
        output_path=predictions.path,
        report_path=drift_report.path,
    )
    record = result.predictions
    record.write(predictions)
    metrics.log_metric("rows", record.rows)
    metrics.log_metric("rows_per_second", record.rows_per_second)
    if result.drift is not None:
        metrics.log_metric("drift_max_psi", round(result.drift.max_psi, 6))
        metrics.log_metric("drift_detected", int(record.drift_detected))
