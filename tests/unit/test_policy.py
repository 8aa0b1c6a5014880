"""The promotion policy: metric, direction, quality gate and margin."""

from __future__ import annotations

import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.registry.policy import Policy, parse_threshold


def test_defaults_per_task():
    regression = Policy.for_task("regression")
    assert (regression.metric, regression.direction) == ("rmse", "min")
    assert [str(t) for t in regression.thresholds] == ["r2>=0.1"]
    classification = Policy.for_task("classification")
    assert (classification.metric, classification.direction) == ("roc_auc", "max")


def test_improvement_follows_direction():
    assert Policy.for_task("regression").improvement(challenger=9.0, champion=10.0) == 1.0
    assert Policy.for_task("classification").improvement(
        challenger=0.9, champion=0.8
    ) == pytest.approx(0.1)
    assert Policy.for_task("regression").improvement(challenger=11.0, champion=10.0) == -1.0


def test_gate_reports_every_failed_threshold():
    policy = Policy.for_task("regression", thresholds=["r2>=0.5", "rmse<40", "mae <= 100"])
    failed = policy.failed_thresholds({"r2": 0.4, "rmse": 50.0, "mae": 30.0})
    assert [str(t) for t in failed] == ["r2>=0.5", "rmse<40"]
    assert policy.failed_thresholds({"r2": 0.6, "rmse": 30.0, "mae": 30.0}) == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"primary_metric": "accuracy"}, "primary_metric: 'accuracy' is not a regression metric"),
        ({"thresholds": ["r2 about 0.3"]}, "thresholds: cannot parse 'r2 about 0.3'"),
        ({"thresholds": ["roc_auc>=0.5"]}, "names 'roc_auc', not a metric of this task"),
        ({"min_improvement": -1.0}, "min_improvement: -1.0 must not be negative"),
    ],
)
def test_bad_policy_is_named(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Policy.for_task("regression", **kwargs)


def test_unknown_task():
    with pytest.raises(ConfigError, match="task: 'ranking'"):
        Policy.for_task("ranking")


def test_threshold_parsing_accepts_scientific_notation():
    threshold = parse_threshold("log_loss<=1e-1", ("log_loss",))
    assert threshold.value == pytest.approx(0.1)
    assert threshold.passes({"log_loss": 0.05})
    assert not threshold.passes({})


def test_ties_on_the_primary_metric_fall_to_the_other_metrics():
    from kfp_mlflow.core.contracts import EvaluationInfo
    from kfp_mlflow.steps.register import rank

    def evaluation(name: str, **metrics: float) -> EvaluationInfo:
        return EvaluationInfo(
            candidate=name, family="f", task="classification", metrics=metrics,
            directions={}, train_run_id="t", evaluate_run_id="e", dataset_digest="d",
        )  # fmt: skip

    evaluations = [
        evaluation("a", roc_auc=1.0, log_loss=0.10, accuracy=1.0),
        evaluation("b", roc_auc=1.0, log_loss=0.01, accuracy=1.0),
        evaluation("c", roc_auc=0.9, log_loss=0.001, accuracy=1.0),
    ]
    passing, rejected = rank(evaluations, Policy.for_task("classification"))
    assert [e.candidate for e in passing] == ["b", "a", "c"]
    assert rejected == {}
    regression = Policy.for_task("regression", primary_metric="r2")
    key = regression.rank_key({"r2": 0.5, "rmse": 3.0, "mae": 2.0})
    assert key == (-0.5, 3.0, 2.0)


def test_custom_metrics_declare_their_direction():
    policy = Policy.for_task("regression", "mape", ["mape<=0.4"], 0.0, {"mape": "min"})
    assert (policy.metric, policy.direction) == ("mape", "min")
    assert policy.rank_key({"mape": 0.2, "rmse": 3.0})[0] == 0.2
    with pytest.raises(ConfigError, match="'mape' is not a regression metric"):
        Policy.for_task("regression", "mape")
