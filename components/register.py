"""`register`: pick the best candidate, gate it, register it, promote it to @champion if it wins."""

from typing import List

from kfp.dsl import Artifact, Input, Markdown, Output


def register(
    evaluations: Input[List[Artifact]],
    model_name: str,
    primary_metric: str,
    thresholds: list,  # e.g. ["r2>=0.3"]; empty: the task's default gate
    min_improvement: float,
    decision: Output[Artifact],
    summary: Output[Markdown],
) -> str:
    """``evaluations`` are ``kfp_mlflow.evaluation/v1`` records (``dsl.Collected`` over
    ``evaluate``'s ``evaluation`` output, or any set of them). ``decision`` gets the
    ``kfp_mlflow.decision/v1`` record; the registered version (or "") is returned."""
    from kfp_mlflow.contracts import EvaluationInfo
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
    )
    result.decision.write(decision)
    return result.version or ""
