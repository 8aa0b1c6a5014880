"""`register`: pick the best candidate, gate it, register it, promote it to @champion if it wins."""

from kfp.dsl import Artifact, Dataset, Input, Markdown, Output


def register(
    model_name: str,
    primary_metric: str,
    thresholds: list,  # e.g. ["r2>=0.3"]; empty: the task's default gate
    min_improvement: float,
    decision: Output[Artifact],
    summary: Output[Markdown],
    evaluations: Input[list[Artifact]] = None,
    evaluation: Input[Artifact] = None,
    test_data: Input[Dataset] = None,
    on_schema_change: str = "block",
) -> str:
    """The candidates are ``kfp_mlflow.evaluation/v1`` records: ``evaluations`` takes many
    (``dsl.Collected`` over ``evaluate``'s ``evaluation`` output in a ParallelFor), ``evaluation``
    takes one; give either or both (a loop of candidates plus one of your own). The winner
    meets @champion on the rows it was scored on, found from its record (both scored by
    ``mlflow.models.evaluate``); ``test_data``, optional, overrides those rows.
    ``on_schema_change`` (``block`` | ``promote``) decides when @champion cannot score them.
    ``decision`` gets the ``kfp_mlflow.decision/v1`` record; the registered version (or "") is
    returned."""
    from kfp_mlflow.core.contracts import DatasetInfo, EvaluationInfo
    from kfp_mlflow.registry.head_to_head import HeldOutRows
    from kfp_mlflow.steps.register import run_register
    from kfp_mlflow.tracking.runs import current_run

    given = [*(evaluations or []), *([] if evaluation is None else [evaluation])]
    result = run_register(
        current_run(),
        evaluations=[
            EvaluationInfo.read(item, input_name="evaluations", consumer="register")
            for item in given
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
