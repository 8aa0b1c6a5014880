"""The promotion policy: which metric decides, which way, the quality gate, the margin."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.models.metrics import METRIC_DIRECTIONS, TASK_METRICS, Direction

# After the primary metric, in this order; then any remaining metric.
TIE_BREAKERS = ("log_loss", "rmse", "mae", "roc_auc", "r2", "f1", "accuracy")

DEFAULT_PRIMARY_METRIC = {"regression": "rmse", "classification": "roc_auc"}
# When the default metric does not exist for the models (a classifier without probabilities).
FALLBACK_METRIC = {"regression": "rmse", "classification": "f1"}
# What promotion does when @champion cannot score the challenger's test rows (its signature needs
# columns or types the new data lacks): keep it until a person decides, or let the gate decide.
SCHEMA_CHANGE_POLICIES = ("block", "promote")

# Better than predicting the mean / than a coin: nothing worse is ever registered by default.
DEFAULT_THRESHOLDS = {"regression": ("r2>=0.1",), "classification": ("roc_auc>=0.6",)}

_THRESHOLD = re.compile(r"^\s*([a-z0-9_]+)\s*(>=|<=|>|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$", re.I)
_COMPARE = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Threshold:
    """One quality-gate condition, e.g. ``r2>=0.3``."""

    metric: str
    operator: str
    value: float

    def passes(self, metrics: dict[str, Any]) -> bool:
        observed = metrics.get(self.metric)
        return observed is not None and bool(_COMPARE[self.operator](float(observed), self.value))

    def __str__(self) -> str:
        return f"{self.metric}{self.operator}{self.value:g}"


@dataclass(frozen=True)
class Policy:
    """How the register step decides."""

    metric: str
    direction: Direction
    thresholds: tuple[Threshold, ...]
    min_improvement: float
    #: How much better than the trivial baseline (in metric units) a candidate must be.
    baseline_margin: float = 0.0
    #: Why the policy differs from what was asked (e.g. a fallback metric), for the summary.
    note: str = ""
    #: Direction of every metric the policy may meet: the built-in ones plus custom ones.
    directions: dict[str, Direction] = field(default_factory=lambda: dict(METRIC_DIRECTIONS))
    #: When @champion cannot score the challenger's test rows: ``block`` or ``promote``.
    on_schema_change: str = "block"

    @classmethod
    def for_task(
        cls,
        task: str,
        primary_metric: str = "",
        thresholds: list[str] | tuple[str, ...] | None = None,
        min_improvement: float = 0.0,
        custom: dict[str, Direction] | None = None,
        on_schema_change: str = "block",
    ) -> Policy:
        """The policy for ``task``, with defaults for what was left empty. ``custom`` declares
        the user's own metrics and their directions."""
        if task not in TASK_METRICS:
            raise ConfigError(f"task: {task!r} is not 'regression' or 'classification'")
        custom = dict(custom or {})
        allowed = (*TASK_METRICS[task], *sorted(custom))
        directions = {**METRIC_DIRECTIONS, **custom}
        metric = primary_metric or DEFAULT_PRIMARY_METRIC[task]
        if metric not in allowed:
            raise ConfigError(
                f"primary_metric: {metric!r} is not a {task} metric",
                hint=f"choose one of {', '.join(allowed)}",
            )
        if min_improvement < 0:
            raise ConfigError(f"min_improvement: {min_improvement} must not be negative")
        if on_schema_change not in SCHEMA_CHANGE_POLICIES:
            raise ConfigError(
                f"on_schema_change: {on_schema_change!r} is not one of "
                f"{', '.join(SCHEMA_CHANGE_POLICIES)}",
                hint="block keeps @champion until someone runs `kfp-mlflow promote`",
            )
        # The default gate speaks of the default metric; with another one (or a fallback) the
        # baseline check is the gate unless thresholds are declared.
        default = DEFAULT_THRESHOLDS[task] if metric == DEFAULT_PRIMARY_METRIC[task] else ()
        raw = default if thresholds is None or len(thresholds) == 0 else thresholds
        return cls(
            metric=metric,
            direction=directions[metric],
            thresholds=tuple(parse_threshold(text, allowed) for text in raw),
            min_improvement=float(min_improvement),
            directions=directions,
            on_schema_change=on_schema_change,
        )

    def improvement(self, challenger: float, champion: float) -> float:
        """How much better ``challenger`` is, in metric units (negative when worse)."""
        return champion - challenger if self.direction == "min" else challenger - champion

    def baseline_shortfall(self, metrics: dict[str, float], baseline: dict[str, float]) -> str:
        """Why ``metrics`` do not beat the baseline by more than ``baseline_margin`` ("" if they
        do): on the primary metric, and for classifiers on macro-F1 too, which a
        majority-class model cannot improve however imbalanced the classes are."""
        checked = [self.metric] + (["f1"] if "f1" in baseline and self.metric != "f1" else [])
        for name in checked:
            if name not in metrics or name not in baseline:
                continue
            gain = (
                baseline[name] - metrics[name]
                if self.directions.get(name) == "min"
                else metrics[name] - baseline[name]
            )
            if gain <= self.baseline_margin:
                return (
                    f"does not beat the baseline on {name} ({metrics[name]:.6g} vs "
                    f"{baseline[name]:.6g} for a model that learned nothing)"
                )
        return ""

    def failed_thresholds(self, metrics: dict[str, Any]) -> list[Threshold]:
        return [threshold for threshold in self.thresholds if not threshold.passes(metrics)]

    def sort_key(self, value: float) -> float:
        """Ascending sort key: best first."""
        return value if self.direction == "min" else -value

    def rank_key(self, metrics: dict[str, float]) -> tuple[float, ...]:
        """Best first by the primary metric; ties fall to the task's other metrics in turn
        (probabilistic ones first: a lower log loss separates classifiers with equal AUC)."""
        order = dict.fromkeys((self.metric, *TIE_BREAKERS, *sorted(self.directions)))
        return tuple(
            metrics[name] if self.directions[name] == "min" else -metrics[name]
            for name in order
            if name in metrics and name in self.directions
        )


def parse_threshold(text: str, allowed: tuple[str, ...]) -> Threshold:
    """Parse ``metric<op>value``; the metric must be one the task produces."""
    match = _THRESHOLD.match(str(text))
    if not match:
        raise ConfigError(
            f"thresholds: cannot parse {text!r}", hint="write metric, operator, value: r2>=0.3"
        )
    metric, operator, value = match.group(1).lower(), match.group(2), float(match.group(3))
    if metric not in allowed:
        raise ConfigError(
            f"thresholds: {text!r} names {metric!r}, not a metric of this task",
            hint=f"choose one of {', '.join(allowed)}",
        )
    return Threshold(metric, operator, value)
