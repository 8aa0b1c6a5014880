"""The declared search space: which model families and hyperparameters compete, and the policy.

A search space is the default below or a YAML file (:func:`load_search_space`)::

    metric: roc_auc                 # optional: the primary metric
    thresholds: ["roc_auc>=0.7"]    # optional: the quality gate
    min_improvement: 0.01           # optional: margin over @champion
    on_schema_change: block         # optional: block | promote when @champion can't score the rows
    max_candidates: 32              # optional: refuse bigger grids (default 32)
    candidates:
      - family: random_forest
        params: {n_estimators: 200, max_depth: [5, 8, 12]}   # a list is a grid: 3 candidates
      - name: xgb
        family: xgboost:XGBClassifier
        params: {learning_rate: [0.05, 0.1]}

A list of values expands to one candidate per combination, named after the values that vary
(``random_forest-max_depth5``). A parameter whose value is itself a list is written as a list of
lists (``hidden_layer_sizes: [[64, 32]]``). The file is checked on load — unknown family,
unknown hyperparameter, empty grid, more candidates than the maximum — with one line naming the
file and the fix (exit 2), before anything runs.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kfp_mlflow.core.exceptions import ConfigError

DEFAULT_MAX_CANDIDATES = 32

# Small on purpose: each candidate is one train task and one evaluate task in the pipeline.
# An even count: kfp.local runs two loop iterations at a time, so a third would run alone.
# Families name a model for either task type (see kfp_mlflow.models.families).
_DEFAULT_CANDIDATES: tuple[dict[str, Any], ...] = (
    {"name": "linear", "family": "linear", "params": {"alpha": 1.0}},
    # Tuned with bench/model_quality.py: leaves of 5 and half the features per split keep the
    # forest's probabilities calibrated enough for roc_auc on imbalanced data.
    {
        "name": "random-forest",
        "family": "random_forest",
        "params": {"n_estimators": 200, "min_samples_leaf": 5, "max_features": 0.5},
    },
    {
        "name": "gradient-boosting-shallow",
        "family": "gradient_boosting",
        "params": {
            "learning_rate": 0.05,
            "max_iter": 200,
            "max_depth": 3,
            "min_samples_leaf": 20,
            "l2_regularization": 1.0,
        },
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


class CandidateEntry(BaseModel):
    """One entry of the file: a family and parameters, where a list of values is a grid."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    family: str
    params: dict[str, Any] = Field(default_factory=dict)
    preprocessing: str | None = None


class SearchSpace(BaseModel):
    """A search-space file, its grids expanded into ``candidates``."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[dict[str, Any]]
    metric: str | None = None
    thresholds: list[str] | None = None
    min_improvement: float | None = None
    on_schema_change: Literal["block", "promote"] | None = None
    max_candidates: int = DEFAULT_MAX_CANDIDATES

    def pipeline_arguments(self) -> dict[str, Any]:
        """The pipeline arguments the file sets (what ``run|compile|submit`` pass on)."""
        arguments: dict[str, Any] = {"candidates": self.candidates}
        if self.metric:
            arguments["primary_metric"] = self.metric
        if self.thresholds is not None:
            arguments["thresholds"] = list(self.thresholds)
        if self.min_improvement is not None:
            arguments["min_improvement"] = self.min_improvement
        if self.on_schema_change is not None:
            arguments["on_schema_change"] = self.on_schema_change
        return arguments


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidates: list[CandidateEntry]
    metric: str | None = None
    thresholds: list[str] | None = None
    min_improvement: float | None = None
    on_schema_change: Literal["block", "promote"] | None = None
    max_candidates: int = Field(default=DEFAULT_MAX_CANDIDATES, ge=1)


def load_search_space(path: str | Path, task: str | None = None) -> SearchSpace:
    """Read, expand and check a search-space file (``task`` narrows the checks when known)."""
    import yaml

    source = Path(path)
    where = f"--search-space {source}"
    try:
        raw = yaml.safe_load(source.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found", hint="give a YAML file path") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{where}: not readable YAML: {first}") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: must be a mapping with a 'candidates' list",
            hint="e.g. candidates: [{family: linear, params: {alpha: [0.1, 1.0]}}]",
        )
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as error:
        issue = error.errors()[0]
        field = ".".join(str(part) for part in issue["loc"]) or "file"
        raise ConfigError(f"{where}: {field}: {issue['msg']}") from None
    if not parsed.candidates:
        raise ConfigError(f"{where}: candidates is empty", hint="list at least one candidate")
    candidates = expand(parsed.candidates, where)
    if len(candidates) > parsed.max_candidates:
        raise ConfigError(
            f"{where}: the grids expand to {len(candidates)} candidates, more than "
            f"max_candidates={parsed.max_candidates}",
            hint="shorten the value lists or raise max_candidates (each is a train task)",
        )
    space = SearchSpace(
        candidates=candidates,
        metric=parsed.metric,
        thresholds=parsed.thresholds,
        min_improvement=parsed.min_improvement,
        on_schema_change=parsed.on_schema_change,
        max_candidates=parsed.max_candidates,
    )
    _check(space, where, task)
    return space


def expand(entries: list[CandidateEntry], where: str = "candidates") -> list[dict[str, Any]]:
    """One candidate per combination of the listed values, with unique names."""
    candidates: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        base = entry.name or entry.family.rpartition(":")[2] or entry.family
        grid = {k: v for k, v in entry.params.items() if isinstance(v, list)}
        for name, values in grid.items():
            if not values:
                raise ConfigError(
                    f"{where}: candidates[{index}] ({base}): {name} is an empty list",
                    hint="give at least one value (a list of values is a grid)",
                )
        fixed = {k: v for k, v in entry.params.items() if k not in grid}
        for combination in itertools.product(*grid.values()):
            varying = dict(zip(grid, combination, strict=True))
            suffix = "-".join(f"{k}{_label(v)}" for k, v in varying.items() if len(grid[k]) > 1)
            candidate: dict[str, Any] = {
                "name": f"{base}-{suffix}" if suffix else base,
                "family": entry.family,
                "params": {**fixed, **varying},
            }
            if entry.preprocessing:
                candidate["preprocessing"] = entry.preprocessing
            candidates.append(candidate)
    seen: dict[str, int] = {}
    for item in candidates:  # two entries of one family: number the repeats
        name = str(item["name"])
        count = seen.get(name, 0)
        seen[name] = count + 1
        if count:
            item["name"] = f"{name}-{count + 1}"
    return candidates


def _label(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", str(value)).strip("_") or "x"


def _check(space: SearchSpace, where: str, task: str | None) -> None:
    from kfp_mlflow.steps.validation import check_arguments

    try:
        check_arguments({"task": task or "", **space.pipeline_arguments()}, import_metrics=False)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error.message}", hint=error.hint) from None
