"""Scoring a fitted model on held-out rows: metrics, feature importance and a plot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kfp_mlflow.core.exceptions import ConfigError

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
class MetricSpec:
    """A user's metric, named by import path: ``module:function(y_true, y_pred) -> float``.

    ``uses="probabilities"`` passes the positive-class probabilities (binary) or the probability
    matrix (multiclass) instead of the predicted labels.
    """

    name: str
    function: str
    direction: Direction
    uses: Literal["predictions", "probabilities"] = "predictions"

    @classmethod
    def parse(cls, raw: Any) -> MetricSpec:
        """From a pipeline parameter: ``{"name", "function", "direction"[, "uses"]}``."""
        if not isinstance(raw, dict) or not {"name", "function", "direction"} <= set(raw):
            raise ConfigError(
                f"metrics: {raw!r} must be a mapping with name, function and direction",
                hint='e.g. {"name": "mape", "function": "my_pkg.metrics:mape", "direction": "min"}',
            )
        name, direction = str(raw["name"]), raw["direction"]
        if name in METRIC_DIRECTIONS:
            raise ConfigError(f"metrics: {name!r} is a built-in metric; give yours another name")
        if direction not in ("min", "max"):
            raise ConfigError(f"metrics: direction of {name!r} must be 'min' or 'max'")
        uses = raw.get("uses", "predictions")
        if uses not in ("predictions", "probabilities"):
            raise ConfigError(f"metrics: uses of {name!r} must be predictions or probabilities")
        if ":" not in str(raw["function"]):
            raise ConfigError(
                f"metrics: function of {name!r} must be an import path module:function",
                hint="e.g. my_pkg.metrics:mape",
            )
        return cls(name, str(raw["function"]), direction, uses)

    def as_dict(self) -> dict[str, str]:
        """What :meth:`parse` reads back: how the metric travels in evaluation records."""
        return {
            "name": self.name,
            "function": self.function,
            "direction": self.direction,
            "uses": self.uses,
        }

    def load(self) -> Callable[..., float]:
        from kfp_mlflow.core.extensions import load_object

        function = load_object(self.function, f"function of {self.name!r}", section="metrics")
        if not callable(function):
            raise ConfigError(f"metrics: {self.function!r} is not callable")
        return function  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Scores:
    """What evaluate measured: metrics, and the curves KFP's UI can draw for classifiers."""

    metrics: dict[str, float]
    predictions: Any
    confusion_matrix: tuple[list[str], list[list[int]]] | None = None
    roc_curve: tuple[list[float], list[float], list[float]] | None = None


def score(
    model: Any,
    features: pd.DataFrame,
    target: pd.Series,
    task: str,
    extra: tuple[MetricSpec, ...] = (),
) -> Scores:
    """Metrics of ``model`` on (features, target) for ``task``, plus the ``extra`` ones.

    ``model`` needs ``predict``; a classifier that also has ``predict_proba`` and ``classes_``
    (any scikit-learn-compatible one) gets the probabilistic metrics too.
    """
    import numpy as np
    from sklearn import metrics

    predictions = np.asarray(model.predict(features))
    if predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if task == "regression":
        values = {
            "rmse": float(metrics.root_mean_squared_error(target, predictions)),
            "mae": float(metrics.mean_absolute_error(target, predictions)),
            "r2": float(metrics.r2_score(target, predictions)),
        }
        values |= _extra(extra, target, predictions, None)
        return Scores(metrics=values, predictions=predictions)
    labels = target.astype(str).to_numpy()
    predicted = predictions.astype(str)
    probabilistic = hasattr(model, "predict_proba") and hasattr(model, "classes_")
    classes = (
        [str(c) for c in model.classes_] if probabilistic else sorted(set(labels) | set(predicted))
    )
    probabilities = model.predict_proba(features) if probabilistic else None
    binary = len(classes) == 2
    values = {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "f1": float(metrics.f1_score(labels, predicted, average="macro")),
    }
    if probabilities is not None:
        values["log_loss"] = float(metrics.log_loss(labels, probabilities, labels=classes))
        # AUC is undefined when a class is absent from the split.
        if len(set(labels)) == len(classes):
            values["roc_auc"] = float(
                metrics.roc_auc_score(labels, probabilities[:, 1], labels=classes)
                if binary
                else metrics.roc_auc_score(labels, probabilities, multi_class="ovr", labels=classes)
            )
    positive = probabilities[:, 1] if probabilities is not None and binary else probabilities
    values |= _extra(extra, labels, predicted, positive)
    matrix = metrics.confusion_matrix(labels, predicted, labels=classes)
    roc = None
    if binary and probabilities is not None:
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


#: Held-out rows permutation importance scores at most (a seeded sample above that).
IMPORTANCE_ROWS = 10_000


def feature_importance(
    model: Any, features: pd.DataFrame, target: pd.Series, task: str, seed: int = 0
) -> pd.DataFrame:
    """Permutation importance on the held-out rows: comparable across model families."""
    import numpy as np
    import pandas as pd
    from sklearn.inspection import permutation_importance

    scoring = "neg_root_mean_squared_error" if task == "regression" else "accuracy"
    labels = target if task == "regression" else target.astype(str)
    if len(features) > IMPORTANCE_ROWS:
        # Each feature is scored n_repeats times: on every held-out row that is minutes per
        # candidate at a million rows, while a sample ranks the features the same way.
        rows = np.random.default_rng(seed).choice(len(features), IMPORTANCE_ROWS, replace=False)
        rows.sort()
        features, labels = features.iloc[rows], labels.iloc[rows]
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


def _extra(
    specs: tuple[MetricSpec, ...], truth: Any, predictions: Any, probabilities: Any
) -> dict[str, float]:
    values = {}
    for spec in specs:
        if spec.uses == "probabilities" and probabilities is None:
            raise ConfigError(
                f"metrics: {spec.name!r} needs probabilities, which this model does not give"
            )
        given = probabilities if spec.uses == "probabilities" else predictions
        try:
            values[spec.name] = float(spec.load()(truth, given))
        except ConfigError:
            raise
        except Exception as error:
            raise ConfigError(
                f"metrics: {spec.function} failed for {spec.name!r}: {type(error).__name__}: "
                f"{error}"
            ) from error
    return values


def baseline_metrics(
    train_target: pd.Series, test_target: pd.Series, task: str
) -> dict[str, float]:
    """What a model that learned nothing scores on the test split: the train mean (regression)
    or the train class prior (classification). A candidate must beat it to be registered."""
    import numpy as np
    from sklearn.dummy import DummyClassifier, DummyRegressor

    placeholder = np.zeros((len(train_target), 1))
    dummy: Any = (
        DummyRegressor(strategy="mean")
        if task == "regression"
        else DummyClassifier(strategy="prior")
    )
    labels = train_target if task == "regression" else train_target.astype(str)
    dummy.fit(placeholder, labels)
    truth = test_target if task == "regression" else test_target.astype(str)
    import pandas as pd

    frame = pd.DataFrame({"placeholder": np.zeros(len(test_target))})
    return score(dummy, frame, truth, task).metrics
