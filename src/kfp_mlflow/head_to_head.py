"""Like-for-like promotion: the challenger and ``@champion`` scored on the same held-out rows.

A challenger's own evaluation ran on its own test split; the champion's tags hold a score on an
older, different one. Comparing those two numbers says as much about the splits as about the
models. So before promotion the register step scores *both* versions on the challenger's test
rows with ``mlflow.models.evaluate`` (each in a child run of the register run, so the results
show in MLflow's UI) and lets ``mlflow.models.validate_evaluation_results`` with a
``MetricThreshold`` decide.

Two things MLflow's comparison cannot express, handled here:

* The policy's ``min_improvement`` is strict ("better by more than m", ties keep the champion);
  ``MetricThreshold(min_absolute_change=...)`` is inclusive and refuses 0, so the margin passed
  is ``max(m, 1e-9)``.
* The built-in evaluator averages F1 per positive class for binary tasks; ours is macro-F1, so
  ``f1`` is measured by a ``make_metric`` of the same definition.

Each result is one JSON tag on the challenger's version, named after the champion it met
(``kfp_mlflow.h2h.v<N>``, written in one call so a racing reader never sees half of it): a
version that re-challenges a new champion during a race keeps every earlier result, which is what
lets a promoter repair a stale alias write. :mod:`kfp_mlflow.promotion` decides on them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from kfp_mlflow.failures import server_failed
from kfp_mlflow.tag_schema import TAG_HEAD_TO_HEAD_PREFIX, TAG_PARENT, TAG_RUN_NAME
from kfp_mlflow.tracking import mlflow_errors, tracking_uri_env

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from kfp_mlflow.contracts import DatasetInfo
    from kfp_mlflow.policy import Policy

Verdict = Literal["won", "lost", "incomparable", "unmeasured"]
#: ``incomparable``: the champion cannot score these rows (its signature needs other columns or
#: types): the policy's ``on_schema_change`` decides. ``unmeasured``: mlflow.evaluate does not
#: produce the policy's metric for these models (a custom metric, or no class probabilities
#: through the flavor): promotion falls back to each version's own-split score and says so.

# Our metric → the default evaluator's key, where the definitions are the same.
MLFLOW_METRIC = {
    "rmse": "root_mean_squared_error",
    "mae": "mean_absolute_error",
    "r2": "r2_score",
    "accuracy": "accuracy_score",
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "f1": "f1_macro",
}
# MetricThreshold refuses a zero margin; this one makes "better" strict without changing it.
_STRICT = 1e-9


@dataclass(frozen=True)
class HeadToHead:
    """One challenger against one champion version on the challenger's test rows."""

    against: str  # the champion version compared with
    verdict: Verdict
    metric: str
    challenger: float | None
    champion: float | None
    data_digest: str
    detail: str
    #: The policy's choice when ``incomparable``: ``promote`` or ``block``.
    on_schema_change: str = "block"

    def as_tag(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def tag(self) -> str:
        return f"{TAG_HEAD_TO_HEAD_PREFIX}{self.against}"

    @classmethod
    def records(cls, version: ModelVersion) -> dict[str, HeadToHead]:
        """Every head-to-head ``version`` had, by the champion version it met."""
        found = {}
        for key, raw in version.tags.items():
            if not key.startswith(TAG_HEAD_TO_HEAD_PREFIX):
                continue
            try:
                record = cls(**json.loads(raw))
            except (TypeError, ValueError):  # not ours: as if never compared
                continue
            found[record.against] = record
        return found

    @classmethod
    def of(cls, version: ModelVersion, against: str) -> HeadToHead | None:
        return cls.records(version).get(against)

    def describe(self, version: str) -> str:
        if self.verdict in ("won", "lost") and self.challenger is not None:
            return (
                f"on the same {self.data_digest[:12]} test rows v{version} {self.metric}="
                f"{self.challenger:.6g} vs v{self.against} {self.champion:.6g} (mlflow.evaluate)"
            )
        return self.detail


@dataclass(frozen=True)
class HeldOutRows:
    """The held-out rows the challenger was evaluated on."""

    features: pd.DataFrame
    target: pd.Series
    task: str
    digest: str

    @classmethod
    def read(cls, path: str, dataset: DatasetInfo) -> HeldOutRows:
        """A ``kfp_mlflow.dataset/v1`` split as the models see it (as ``evaluate`` reads it)."""
        import pandas as pd

        from kfp_mlflow.modeling import as_model_input

        frame = pd.read_parquet(path)
        features = as_model_input(frame.drop(columns=[dataset.target]))
        return cls(features, frame[dataset.target], dataset.task, dataset.digest)


def challenge(
    client: MlflowClient,
    name: str,
    version: str,
    policy: Policy,
    rows: HeldOutRows,
    *,
    experiment_id: str,
    parent_run_id: str,
) -> Callable[[str], HeadToHead]:
    """A function that scores ``version`` against a given champion version on ``rows``,
    records the result on ``version`` and returns it (once per champion version)."""
    done: dict[str, HeadToHead] = {}

    def against(champion: str) -> HeadToHead:
        if champion not in done:
            result = compare(
                client, name, version, champion, policy, rows,
                experiment_id=experiment_id, parent_run_id=parent_run_id,
            )  # fmt: skip
            with mlflow_errors(f"record the head-to-head on v{version} of {name!r}"):
                client.set_model_version_tag(name, version, result.tag, result.as_tag())
            done[champion] = result
        return done[champion]

    return against


def compare(
    client: MlflowClient,
    name: str,
    challenger: str,
    champion: str,
    policy: Policy,
    rows: HeldOutRows,
    *,
    experiment_id: str,
    parent_run_id: str,
) -> HeadToHead:
    """Evaluate both versions on ``rows``; MLflow's validation says whether the challenger wins."""
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    def verdict(
        kind: Verdict, detail: str, ours: float | None = None, theirs: float | None = None
    ) -> HeadToHead:
        return HeadToHead(
            champion, kind, policy.metric, ours, theirs, rows.digest, detail,
            on_schema_change=policy.on_schema_change,
        )  # fmt: skip

    try:
        missing = _missing_columns(client, name, champion, rows.features)
    except _CannotScoreError as error:
        return verdict("unmeasured", f"@champion v{champion} could not be scored here: {error}")
    if missing:
        return verdict(
            "incomparable",
            f"@champion v{champion} needs columns the new test rows lack: {', '.join(missing)}",
        )
    key = MLFLOW_METRIC.get(policy.metric)
    if key is None:
        return verdict("unmeasured", f"{policy.metric} is a custom metric mlflow.evaluate lacks")
    try:
        theirs = _evaluate(client, name, champion, rows, experiment_id, parent_run_id, "champion")
    except _CannotScoreError as error:
        if error.schema:
            return verdict(
                "incomparable", f"@champion v{champion} cannot score the new rows: {error}"
            )
        return verdict("unmeasured", f"@champion v{champion} could not be scored here: {error}")
    try:
        ours = _evaluate(client, name, challenger, rows, experiment_id, parent_run_id, "challenger")
    except _CannotScoreError as error:
        return verdict("unmeasured", f"v{challenger} could not be scored here: {error}")
    if key not in ours.metrics or key not in theirs.metrics:
        return verdict(
            "unmeasured",
            f"mlflow.evaluate gives no {policy.metric} for these models (no class probabilities "
            "through their flavor)",
        )
    ours_value, theirs_value = float(ours.metrics[key]), float(theirs.metrics[key])
    import mlflow

    threshold = MetricThreshold(  # type: ignore[no-untyped-call]
        min_absolute_change=max(policy.min_improvement, _STRICT),
        greater_is_better=policy.direction == "max",
    )
    try:
        mlflow.validate_evaluation_results({key: threshold}, ours, theirs)
    except ModelValidationFailedException:
        return verdict("lost", "", ours_value, theirs_value)
    return verdict("won", "", ours_value, theirs_value)


class _CannotScoreError(Exception):
    """The model could not score the rows: its schema refused them (``schema``), or it could not
    be loaded or run here (a flavor whose package is missing where register runs). Not a
    tracking failure: those propagate."""

    def __init__(self, message: str, schema: bool) -> None:
        super().__init__(message)
        self.schema = schema


def _missing_columns(client: MlflowClient, name: str, version: str, features: Any) -> list[str]:
    from mlflow.models import get_model_info

    with tracking_uri_env(client.tracking_uri), _scoring(f"read v{version} of {name!r}"):
        signature = get_model_info(f"models:/{name}/{version}").signature
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return []
    required = [
        spec.name
        for spec in signature.inputs.inputs
        if spec.name is not None and getattr(spec, "required", True)
    ]
    return [column for column in required if column not in features.columns]


@contextmanager
def _scoring(action: str) -> Iterator[None]:
    """A failing server or store propagates as a TrackingError; anything else this model does
    (no such artifact, a flavor not installed here, a schema refusal) is a _CannotScoreError."""
    from kfp_mlflow.exceptions import KfpMlflowError

    try:
        with mlflow_errors(action):
            yield
    except KfpMlflowError as error:
        cause = error.__cause__
        if cause is None or server_failed(cause):
            raise
        raise _cannot_score(cause) from cause
    except Exception as error:
        raise _cannot_score(error) from error


def _cannot_score(error: BaseException) -> _CannotScoreError:
    from mlflow.exceptions import MlflowException

    lines = str(getattr(error, "message", error)).strip().splitlines()
    first = f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]
    return _CannotScoreError(
        first, schema=isinstance(error, MlflowException) and "schema" in first.lower()
    )


def _evaluate(
    client: MlflowClient,
    name: str,
    version: str,
    rows: HeldOutRows,
    experiment_id: str,
    parent_run_id: str,
    role: str,
) -> Any:
    """``mlflow.models.evaluate`` of one version, in its own child run of the register run."""
    import mlflow

    target = "__target__"
    data = rows.features.copy()
    data[target] = rows.target.to_numpy()
    model_type = "regressor" if rows.task == "regression" else "classifier"
    extra = [] if rows.task == "regression" else [_f1_macro()]
    with mlflow_errors(f"open the head-to-head run for v{version}"):
        run = client.create_run(
            experiment_id,
            tags={TAG_PARENT: parent_run_id, TAG_RUN_NAME: f"head-to-head-{role}-v{version}"},
        )
    # The run ends FINISHED, or FAILED when evaluate raises (start_run's own exit does both).
    with (
        tracking_uri_env(client.tracking_uri),
        _scoring(f"evaluate v{version} of {name!r} on the test rows"),
        mlflow.start_run(run_id=run.info.run_id, nested=True),
    ):
        return mlflow.models.evaluate(  # type: ignore[no-untyped-call]
            model=f"models:/{name}/{version}",
            data=data,
            targets=target,
            model_type=model_type,
            extra_metrics=extra,
            evaluator_config={"log_model_explainability": False, "average": "macro"},
        )


def _f1_macro() -> Any:
    from mlflow.models import make_metric

    def f1_macro(predictions: Any, targets: Any) -> Any:
        from mlflow.metrics import MetricValue
        from sklearn.metrics import f1_score

        value = f1_score(targets.astype(str), predictions.astype(str), average="macro")
        return MetricValue(aggregate_results={"f1_macro": float(value)})

    return make_metric(  # type: ignore[no-untyped-call]
        eval_fn=f1_macro, greater_is_better=True, name="f1_macro"
    )
