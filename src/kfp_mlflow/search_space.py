"""The declared search space: which model families and hyperparameters compete."""

from __future__ import annotations

from typing import Any

# Small on purpose: each candidate is one train task and one evaluate task in the pipeline.
# An even count: kfp.local runs two loop iterations at a time, so a third would run alone.
# Families name a model for either task type (see kfp_mlflow.modeling.FAMILIES).
_DEFAULT_CANDIDATES: tuple[dict[str, Any], ...] = (
    {"name": "linear", "family": "linear", "params": {"alpha": 1.0}},
    {
        "name": "random-forest",
        "family": "random_forest",
        "params": {"n_estimators": 100, "max_depth": 8},
    },
    {
        "name": "gradient-boosting-shallow",
        "family": "gradient_boosting",
        "params": {"learning_rate": 0.1, "max_iter": 100, "max_depth": 3},
    },
    {
        "name": "gradient-boosting",
        "family": "gradient_boosting",
        "params": {"learning_rate": 0.05, "max_iter": 200},
    },
)


def default_candidates() -> list[dict[str, Any]]:
    """A fresh copy of the default candidates (pipeline parameters must not share state)."""
    return [dict(candidate, params=dict(candidate["params"])) for candidate in _DEFAULT_CANDIDATES]
