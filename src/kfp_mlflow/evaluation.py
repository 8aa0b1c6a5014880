"""Scoring a fitted model on held-out rows: metrics, feature importance and a plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

Direction = Literal["min", "max"]

# Every metric evaluate produces, and which way is better.
METRIC_DIRECTIONS: dict[str, Direction] = {
    "rmse": "min",
    "mae": "min",
    "r2": "max",
    "accuracy": "max",
    "f1": "max",
    "roc_auc": "max",
    "log_loss": "min",
}
TASK_METRICS = {
    "regression": ("rmse", "mae", "r2"),
    "classification": ("accuracy", "f1", "roc_auc", "log_loss"),
}


@dataclass(frozen=True)
class Scores:
    """What evaluate measured: metrics, and the curves KFP's UI can draw for classifiers."""

    metrics: dict[str, float]
    predictions: Any
    confusion_matrix: tuple[list[str], list[list[int]]] | None = None
    roc_curve: tuple[list[float], list[float], list[float]] | None = None


def score(model: Any, features: pd.DataFrame, target: pd.Series, task: str) -> Scores:
    """Metrics of ``model`` on (features, target) for ``task``."""
    from sklearn import metrics

    predictions = model.predict(features)
    if task == "regression":
        return Scores(
            metrics={
                "rmse": float(metrics.root_mean_squared_error(target, predictions)),
                "mae": float(metrics.mean_absolute_error(target, predictions)),
                "r2": float(metrics.r2_score(target, predictions)),
            },
            predictions=predictions,
        )
    classes = [str(c) for c in model.classes_]
    probabilities = model.predict_proba(features)
    labels = target.astype(str).to_numpy()
    predicted = predictions.astype(str)
    binary = len(classes) == 2
    values = {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "f1": float(metrics.f1_score(labels, predicted, average="macro")),
        "log_loss": float(metrics.log_loss(labels, probabilities, labels=classes)),
    }
    if len(set(labels)) == len(classes):  # AUC is undefined when a class is absent from the split
        values["roc_auc"] = float(
            metrics.roc_auc_score(labels, probabilities[:, 1], labels=classes)
            if binary
            else metrics.roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes)
        )
    matrix = metrics.confusion_matrix(labels, predicted, labels=classes)
    roc = None
    if binary:
        fpr, tpr, thresholds = metrics.roc_curve(labels, probabilities[:, 1], pos_label=classes[1])
        # KFP's UI wants finite thresholds; the first one is +inf by definition.
        thresholds[0] = 1.0
        roc = (fpr.tolist(), tpr.tolist(), thresholds.tolist())
    return Scores(
        metrics=values,
        predictions=predicted,
        confusion_matrix=(classes, matrix.tolist()),
        roc_curve=roc,
    )


def feature_importance(
    model: Any, features: pd.DataFrame, target: pd.Series, task: str, seed: int = 0
) -> pd.DataFrame:
    """Permutation importance on the held-out rows: comparable across model families."""
    import pandas as pd
    from sklearn.inspection import permutation_importance

    scoring = "neg_root_mean_squared_error" if task == "regression" else "accuracy"
    labels = target if task == "regression" else target.astype(str)
    result = permutation_importance(
        model, features, labels, n_repeats=3, random_state=seed, scoring=scoring, n_jobs=1
    )
    table = pd.DataFrame(
        {
            "feature": list(features.columns),
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    return table.sort_values("importance_mean", ascending=False).reset_index(drop=True)


def plot(scores: Scores, target: pd.Series, task: str, title: str, path: Path) -> Path:
    """Predicted vs actual (regression) or the confusion matrix (classification), as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a pipeline pod
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    if task == "regression":
        axes.scatter(target, scores.predictions, s=12, alpha=0.6)
        low, high = (
            float(min(target.min(), scores.predictions.min())),
            float(max(target.max(), scores.predictions.max())),
        )
        axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
        axes.set_xlabel("actual")
        axes.set_ylabel("predicted")
    elif scores.confusion_matrix is not None:
        from sklearn.metrics import ConfusionMatrixDisplay

        labels, matrix = scores.confusion_matrix
        import numpy as np

        ConfusionMatrixDisplay(np.array(matrix), display_labels=labels).plot(
            ax=axes, colorbar=False
        )
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
