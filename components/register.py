"""`register`: pick the best candidate, gate it, register it, promote it to @champion if it wins."""

from typing import List

from kfp.dsl import Artifact, Input, Markdown, Metrics, Output


def register(
    evaluations: Input[List[Metrics]],
    model_name: str,
    primary_metric: str,
    thresholds: list,  # e.g. ["r2>=0.3"]; empty: the task's default gate
    min_improvement: float,
    task: str,
    parent_run_id: str,
    kfp_run_id: str,
    kfp_run_name: str,
    kfp_task_name: str,
    decision: Output[Artifact],
    summary: Output[Markdown],
) -> str:
    from kfp_mlflow.steps.register import run_register
    from kfp_mlflow.tracking import KfpContext

    result = run_register(
        evaluation_paths=[evaluation.path for evaluation in evaluations],
        model_name=model_name,
        primary_metric=primary_metric,
        thresholds=[str(threshold) for threshold in thresholds],
        min_improvement=min_improvement,
        task=task,
        parent_run_id=parent_run_id,
        kfp=KfpContext(run_id=kfp_run_id, run_name=kfp_run_name, task_name=kfp_task_name),
        decision_path=decision.path,
        summary_path=summary.path,
    )
    decision.metadata.update(result.metadata)
    return result.version or ""
