"""Score one trained candidate on the held-out split; write what register and people read."""

from __future__ import annotations

import base64
import html
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_mlflow.evaluation import feature_importance, plot, score
from kfp_mlflow.modeling import as_model_input
from kfp_mlflow.settings import Settings, get_settings
from kfp_mlflow.tracking import KfpContext, TaskRun, mlflow_errors, run_link, task_run


@dataclass(frozen=True)
class EvaluateResult:
    metrics: dict[str, float]
    evaluation: dict[str, Any]
    confusion_matrix: tuple[list[str], list[list[int]]] | None
    roc_curve: tuple[list[float], list[float], list[float]] | None


def run_evaluate(
    *,
    model_dir: str,
    model_metadata: dict[str, Any],
    test_path: str,
    test_metadata: dict[str, Any],
    target: str,
    task: str,
    parent_run_id: str,
    kfp: KfpContext,
    evaluation_path: str,
    report_path: str,
    importance_path: str | None = None,
    plot_path: str | None = None,
    settings: Settings | None = None,
) -> EvaluateResult:
    """Write the evaluation (JSON, read by register), a Markdown report, the feature importance
    (CSV) and the plot (HTML embedding the PNG, which the KFP UI renders)."""
    import mlflow.sklearn
    import pandas as pd

    settings = settings or get_settings()
    candidate = str(model_metadata.get("candidate", "model"))
    with task_run(
        step="evaluate",
        parent_run_id=parent_run_id,
        kfp=kfp,
        run_name=f"evaluate-{candidate}",
        settings=settings,
    ) as run:
        run.log_params({"candidate": candidate, "task": task})
        run.set_tags(
            {
                "kfp_mlflow.candidate": candidate,
                "kfp_mlflow.train_run_id": model_metadata.get("mlflow_run_id", ""),
                "kfp_mlflow.dataset_digest": test_metadata.get("digest", ""),
            }
        )
        model = mlflow.sklearn.load_model(model_dir)
        frame = pd.read_parquet(test_path)
        features = as_model_input(frame.drop(columns=[target]))
        labels = frame[target]
        scores = score(model, features, labels, task)
        run.log_metrics(scores.metrics)
        _log_figures(
            run, model, features, labels, task, scores, candidate, importance_path, plot_path
        )
        evaluation = {
            "candidate": candidate,
            "family": model_metadata.get("family"),
            "params": model_metadata.get("params", {}),
            "task": task,
            "metrics": scores.metrics,
            "train_run_id": model_metadata.get("mlflow_run_id"),
            "model_id": model_metadata.get("mlflow_model_id"),
            "evaluate_run_id": run.run_id,
            "dataset_digest": test_metadata.get("digest"),
            # Artifact metadata is a protobuf Struct: the integer seed comes back as a double.
            "seed": int(model_metadata["seed"]) if model_metadata.get("seed") is not None else None,
        }
        Path(evaluation_path).parent.mkdir(parents=True, exist_ok=True)
        Path(evaluation_path).write_text(json.dumps(evaluation, indent=2, sort_keys=True))
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(_report(evaluation, settings, run.experiment_id))
    return EvaluateResult(
        metrics=scores.metrics,
        evaluation=evaluation,
        confusion_matrix=scores.confusion_matrix,
        roc_curve=scores.roc_curve,
    )


def _log_figures(
    run: TaskRun,
    model: Any,
    features: Any,
    labels: Any,
    task: str,
    scores: Any,
    name: str,
    importance_path: str | None,
    plot_path: str | None,
) -> None:
    """Feature importance (CSV) and a plot (PNG): to MLflow in one upload, and to the outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "feature_importance.csv"
        feature_importance(model, features, labels, task).to_csv(csv, index=False)
        kind = "predicted_vs_actual" if task == "regression" else "confusion_matrix"
        title = f"{name}: {kind.replace('_', ' ')}"
        png = plot(scores, labels, task, title, folder / f"{kind}.png")
        with mlflow_errors("upload evaluation artifacts"):
            run.client.log_artifacts(run.run_id, str(folder), "evaluation")
        if importance_path:
            Path(importance_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(csv, importance_path)
        if plot_path:
            Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
            Path(plot_path).write_text(_embedded_png(png, title))


def _embedded_png(png: Path, title: str) -> str:
    """A self-contained HTML page: KFP's UI renders HTML artifacts, not bare images."""
    encoded = base64.b64encode(png.read_bytes()).decode()
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><img alt='{html.escape(title)}' src='data:image/png;base64,{encoded}'>"
        "</body></html>\n"
    )


def _report(evaluation: dict[str, Any], settings: Settings, experiment_id: str) -> str:
    lines = [f"## Candidate `{evaluation['candidate']}` ({evaluation['family']})", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in sorted(evaluation["metrics"].items())]
    for label, key in (("training run", "train_run_id"), ("evaluation run", "evaluate_run_id")):
        link = run_link(settings, experiment_id, str(evaluation[key]))
        lines.append("")
        lines.append(
            f"MLflow {label}: " + (f"[{evaluation[key]}]({link})" if link else str(evaluation[key]))
        )
    return "\n".join(lines) + "\n"
