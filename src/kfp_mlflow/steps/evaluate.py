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

from kfp_mlflow.core.contracts import DatasetInfo, EvaluationInfo, ModelInfo
from kfp_mlflow.core.exceptions import ContractError
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.core.tag_schema import (
    TAG_CANDIDATE,
    TAG_DATASET_DIGEST,
    TAG_RUN_NAME,
    TAG_TEST_DIGEST,
    TAG_TEST_ROWS_URI,
    TAG_TRAIN_RUN_ID,
)
from kfp_mlflow.models.metrics import (
    METRIC_DIRECTIONS,
    Direction,
    MetricSpec,
    feature_importance,
    plot,
    score,
)
from kfp_mlflow.registry.head_to_head import HeldOutRows
from kfp_mlflow.tracking.runs import TaskRun, mlflow_errors, run_link
from kfp_mlflow.tracking.snapshots import store_held_out


@dataclass(frozen=True)
class EvaluateResult:
    evaluation: EvaluationInfo
    confusion_matrix: tuple[list[str], list[list[int]]] | None
    roc_curve: tuple[list[float], list[float], list[float]] | None


def load_scorer(model_dir: str) -> Any:
    """Any MLflow model as something ``score`` can use (see
    :func:`kfp_mlflow.models.families.scorer_for`:
    the scikit-learn object, a flavor's adapter that adds probabilities, or the pyfunc model)."""
    from kfp_mlflow.models.families import scorer_for

    return scorer_for(model_dir)


def run_evaluate(
    run: TaskRun,
    *,
    model_dir: str,
    model: ModelInfo,
    test_path: str,
    dataset: DatasetInfo,
    evaluation_path: str,
    report_path: str,
    importance_path: str | None = None,
    plot_path: str | None = None,
    extra_metrics: list[dict[str, Any]] | None = None,
    settings: Settings | None = None,
) -> EvaluateResult:
    """Score the model on the test split. Writes the evaluation (JSON, for people), a Markdown
    report, the feature importance (CSV) and the plot (HTML embedding the PNG)."""

    settings = settings or get_settings()
    specs = tuple(MetricSpec.parse(raw) for raw in extra_metrics or [])
    if model.task != dataset.task:
        raise ContractError(
            f"evaluate: model {model.candidate!r} was trained for {model.task} but the test "
            f"data is {dataset.task}",
            hint="connect train and evaluate to splits of the same preprocess",
        )
    run.set_tags(
        {
            TAG_CANDIDATE: model.candidate,
            TAG_TRAIN_RUN_ID: model.train_run_id,
            TAG_DATASET_DIGEST: dataset.digest,
            TAG_RUN_NAME: f"{run.kfp.task_name or run.step}-{model.candidate}",
        }
    )
    run.log_params({"candidate": model.candidate, "task": dataset.task})
    scorer = load_scorer(model_dir)
    rows = HeldOutRows.read(test_path, dataset)
    features, labels = rows.features, rows.target
    # The rows themselves, kept in MLflow: register meets @champion on exactly these.
    rows_uri = store_held_out(run, test_path, rows.digest)
    run.set_tags({TAG_TEST_DIGEST: rows.digest, TAG_TEST_ROWS_URI: rows_uri})
    scores = score(scorer, features, labels, dataset.task, specs)
    run.log_metrics(scores.metrics)
    _log_figures(
        run, scorer, features, labels, dataset.task, scores, model.candidate,
        importance_path, plot_path,
    )  # fmt: skip
    evaluation = EvaluationInfo(
        candidate=model.candidate,
        family=model.family,
        task=dataset.task,
        params=model.params,
        seed=model.seed,
        metrics=scores.metrics,
        directions={
            name: METRIC_DIRECTIONS[name] if name in METRIC_DIRECTIONS else _direction(specs, name)
            for name in scores.metrics
        },
        train_run_id=model.train_run_id,
        evaluate_run_id=run.run_id,
        model_id=model.model_id,
        dataset_digest=dataset.digest,
        baseline=dataset.baseline,
        target=dataset.target,
        test_size=dataset.test_size,
        snapshot_uri=dataset.snapshot_uri,
        test_rows_uri=rows_uri,
        test_digest=rows.digest,
        test_rows=len(rows),
        metric_specs=[spec.as_dict() for spec in specs],
    )
    Path(evaluation_path).parent.mkdir(parents=True, exist_ok=True)
    Path(evaluation_path).write_text(json.dumps(evaluation.as_metadata(), indent=2))
    Path(report_path).parent.mkdir(parents=True, exist_ok=True)
    Path(report_path).write_text(_report(evaluation, settings, run.experiment_id))
    return EvaluateResult(
        evaluation=evaluation,
        confusion_matrix=scores.confusion_matrix,
        roc_curve=scores.roc_curve,
    )


def _direction(specs: tuple[MetricSpec, ...], name: str) -> Direction:
    return next(spec.direction for spec in specs if spec.name == name)


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
        try:
            feature_importance(model, features, labels, task).to_csv(csv, index=False)
        except (TypeError, AttributeError, ValueError) as error:
            # Permutation importance needs a scikit-learn-style estimator; say why it is absent.
            csv.write_text(f"feature,importance_mean,importance_std\n# unavailable: {error}\n")
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


def _report(evaluation: EvaluationInfo, settings: Settings, experiment_id: str) -> str:
    lines = [f"## Candidate `{evaluation.candidate}` ({evaluation.family})", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in sorted(evaluation.metrics.items())]
    for label, run_id in (
        ("training run", evaluation.train_run_id),
        ("evaluation run", evaluation.evaluate_run_id),
    ):
        link = run_link(settings, experiment_id, run_id)
        lines.append("")
        lines.append(f"MLflow {label}: " + (f"[{run_id}]({link})" if link else run_id))
    return "\n".join(lines) + "\n"
