"""`register`: pick the best candidate, gate it, register it, promote it to @champion if it wins."""

from typing import List

from kfp.dsl import Artifact, Dataset, Input, Markdown, Output


def register(
    evaluations: Input[List[Artifact]],
    model_name: str,
    primary_metric: str,
    thresholds: list,  # e.g. ["r2>=0.3"]; empty: the task's default gate
    min_improvement: float,
    decision: Output[Artifact],
    summary: Output[Markdown],
    test_data: Input[Dataset] = None,
    on_schema_change: str = "block",
) -> str:
    """``evaluations`` are ``kfp_mlflow.evaluation/v1`` records (``dsl.Collected`` over
    ``evaluate``'s ``evaluation`` output, or any set of them). ``test_data`` is the split they
    were scored on: the winner then meets @champion on those rows (both scored by
    ``mlflow.models.evaluate``); ``on_schema_change`` (``block`` | ``promote``) decides when
    @champion cannot score them. ``decision`` gets the ``kfp_mlflow.decision/v1`` record; the
    registered version (or "") is returned."""
    from kfp_mlflow.contracts import DatasetInfo, EvaluationInfo
    from kfp_mlflow.head_to_head import HeldOutRows
    from kfp_mlflow.steps.register import run_register
    from kfp_mlflow.tracking import current_run

    result = run_register(
        current_run(),
        evaluations=[
            EvaluationInfo.read(item, input_name="evaluations", consumer="register")
            for item in evaluations
        ],
        model_name=model_name,
        primary_metric=primary_metric,
        thresholds=[str(threshold) for threshold in thresholds],
        min_improvement=min_improvement,
        decision_path=decision.path,
        summary_path=summary.path,
        test_rows=None
        if test_data is None
        else HeldOutRows.read(
            test_data.path,
            DatasetInfo.read(test_data, input_name="test_data", consumer="register"),
        ),
        on_schema_change=on_schema_change,
    )
    result.decision.write(decision)
    return result.version or ""
