"""`evaluate`: score one candidate on the held-out split; metrics, plots and KFP visualisations."""

from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output


def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    target: str,
    kfp_run_id: str,
    kfp_run_name: str,
    kfp_task_name: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[Markdown],
    feature_importance: Output[Dataset],
    plot: Output[HTML],
) -> None:
    from kfp_mlflow.steps.evaluate import run_evaluate
    from kfp_mlflow.tracking import KfpContext

    result = run_evaluate(
        model_dir=model.path,
        model_metadata=dict(model.metadata),
        test_path=test_data.path,
        test_metadata=dict(test_data.metadata),
        target=target,
        task=test_data.metadata["task"],  # see components/train.py
        parent_run_id=test_data.metadata["parent_run_id"],
        kfp=KfpContext(run_id=kfp_run_id, run_name=kfp_run_name, task_name=kfp_task_name),
        evaluation_path=metrics.path,
        report_path=report.path,
        importance_path=feature_importance.path,
        plot_path=plot.path,
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    if result.confusion_matrix is not None:
        labels, matrix = result.confusion_matrix
        classification_metrics.log_confusion_matrix(labels, matrix)
    if result.roc_curve is not None:
        fpr, tpr, thresholds = result.roc_curve
        classification_metrics.log_roc_curve(fpr, tpr, thresholds)
