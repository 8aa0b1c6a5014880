"""`evaluate`: score any MLflow model on the held-out split; metrics, plots, KFP visualisations."""

from kfp.dsl import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
)


def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[Markdown],
    feature_importance: Output[Dataset],
    plot: Output[HTML],
    extra_metrics: list = [],  # noqa: B006  [{"name", "function": "module:fn", "direction"}]
) -> None:
    """``model`` is any MLflow model directory with a ``kfp_mlflow.model/v1`` record;
    ``evaluation`` gets the ``kfp_mlflow.evaluation/v1`` record that ``register`` reads."""
    from kfp_mlflow.core.contracts import DatasetInfo, ModelInfo
    from kfp_mlflow.steps.evaluate import run_evaluate
    from kfp_mlflow.tracking.runs import current_run

    result = run_evaluate(
        current_run(),
        model_dir=model.path,
        model=ModelInfo.read(model, input_name="model", consumer="evaluate"),
        test_path=test_data.path,
        dataset=DatasetInfo.read(test_data, input_name="test_data", consumer="evaluate"),
        evaluation_path=evaluation.path,
        report_path=report.path,
        importance_path=feature_importance.path,
        plot_path=plot.path,
        extra_metrics=extra_metrics,
    )
    result.evaluation.write(evaluation)
    for name, value in result.evaluation.metrics.items():
        metrics.log_metric(name, value)
    if result.confusion_matrix is not None:
        labels, matrix = result.confusion_matrix
        classification_metrics.log_confusion_matrix(labels, matrix)
    if result.roc_curve is not None:
        fpr, tpr, thresholds = result.roc_curve
        classification_metrics.log_roc_curve(fpr, tpr, thresholds)
