"""Like-for-like promotion: the challenger and ``@champion`` scored on the same held-out rows.

A challenger's own evaluation ran on its own test split; the champion's tags hold a score on an
older, different one. Comparing those two numbers says as much about the splits as about the
models. So before promotion the register step scores *both* versions on the challenger's test
rows with ``mlflow.models.evaluate`` (each in a child run of the register run, so the results
show in MLflow's UI) and lets ``mlflow.models.validate_evaluation_results`` with a
``MetricThreshold`` decide.

The rows travel with the evaluations: ``evaluate`` keeps the exact test split it scored under
the pipeline's parent run and records its ``runs:/`` URI and content digest in the
``EvaluationInfo`` (:func:`held_out_rows` reads it back and checks the digest), so every pipeline
— ours or a user's — gets the like-for-like decision without wiring the split to ``register``.
A custom primary metric is re-measured from the import path its evaluation record carries
(``mlflow.models.make_metric``). Where a comparison cannot be made on the same rows, the record
says so and why (verdict ``unmeasured``), and that sentence reaches the decision line.

Two things MLflow's comparison cannot express, handled here:

* The policy's ``min_improvement`` is strict ("better by more than m", ties keep the champion);
  ``MetricThreshold(min_absolute_change=...)`` is inclusive and refuses 0, so the margin passed
  is ``max(m, 1e-9)``.
* The built-in evaluator averages F1 per positive class for binary tasks; ours is macro-F1, so
  ``f1`` is measured by a ``make_metric`` of the same definition.

Each result is one JSON tag on the challenger's version, named after the champion it met
(``kfp_mlflow.h2h.v<N>``, written in one call so a racing reader never sees half of it): a
version that re-challenges a new champion during a race keeps every earlier result, which is what
lets a promoter repair a stale alias write. :mod:`kfp_mlflow.registry.promotion` decides on them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.tag_schema import TAG_HEAD_TO_HEAD_PREFIX, TAG_PARENT, TAG_RUN_NAME
from kfp_mlflow.tracking.failures import server_failed
from kfp_mlflow.tracking.runs import mlflow_errors, tracking_uri_env

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from kfp_mlflow.core.contracts import DatasetInfo, EvaluationInfo
    from kfp_mlflow.models.metrics import MetricSpec
    from kfp_mlflow.registry.policy import Policy

Verdict = Literal["won", "lost", "incomparable", "unmeasured"]
#: ``incomparable``: the champion cannot score these rows (its signature needs other columns or
#: types): the policy's ``on_schema_change`` decides. ``unmeasured``: mlflow.evaluate does not
#: produce the policy's metric for these models (a custom metric, or no class probabilities
#: through the flavor, a custom metric computed on class probabilities, no test rows recorded
#: by the evaluation): promotion falls back to each version's own-split score and says so.

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
    #: How many rows both were scored on, and where they are kept (``runs:/...``).
    rows: int | None = None
    rows_uri: str | None = None

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
            count = f"{self.rows} " if self.rows else ""
            return (
                f"on the same {count}test rows v{version} {self.metric}={self.challenger:.6g} "
                f"vs v{self.against} {self.champion:.6g} (mlflow.evaluate), rows "
                f"{self.data_digest[:12]}"
            )
        return self.detail

    @property
    def like_for_like(self) -> bool:
        """Both versions were measured on the same rows (whoever won)."""
        return self.verdict in ("won", "lost")


@dataclass(frozen=True)
class HeldOutRows:
    """The held-out rows the challenger was evaluated on."""

    features: pd.DataFrame
    target: pd.Series
    task: str
    #: Content digest of the split as read (:func:`kfp_mlflow.data.datasets.digest`), not of the
    #: dataset it came from: two pipelines agree on it only when they scored the same rows.
    digest: str
    #: Where the rows are kept in MLflow (``runs:/...``), once stored.
    uri: str | None = None

    @classmethod
    def read(cls, path: str, dataset: DatasetInfo) -> HeldOutRows:
        """A ``kfp_mlflow.dataset/v1`` split as the models see it (as ``evaluate`` reads it)."""
        return cls.read_split(path, target=dataset.target, task=dataset.task)

    @classmethod
    def read_split(
        cls, path: str, *, target: str, task: str, uri: str | None = None
    ) -> HeldOutRows:
        import pandas as pd

        from kfp_mlflow.data.datasets import as_model_input, digest

        frame = pd.read_parquet(path)
        features = as_model_input(frame.drop(columns=[target]))
        return cls(features, frame[target], task, digest(frame), uri)

    def __len__(self) -> int:
        return len(self.target)


def held_out_rows(
    evaluation: EvaluationInfo, tracking_uri: str | None
) -> tuple[HeldOutRows | None, str]:
    """The rows ``evaluation`` was scored on, read back from MLflow and checked against the
    digest evaluate recorded; or None and why they cannot be had (said on the version)."""
    import tempfile
    from pathlib import Path

    from kfp_mlflow.tracking.snapshots import download

    who = f"{evaluation.candidate!r}'s evaluation"
    if not evaluation.test_rows_uri or not evaluation.test_digest or not evaluation.target:
        return None, (
            f"{who} records no test rows (test_rows_uri of kfp_mlflow.evaluation/v1: an evaluate "
            "step other than kfp_mlflow.evaluate, or an older one), so each version's score on "
            "its own test split decided"
        )
    with tempfile.TemporaryDirectory() as folder:
        try:
            with _scoring(f"download the test rows {evaluation.test_rows_uri}"):
                local = download(evaluation.test_rows_uri, tracking_uri, Path(folder))
        except _CannotScoreError as error:
            return None, f"the test rows of {who} could not be read ({error}), so each " + (
                "version's score on its own test split decided"
            )
        rows = HeldOutRows.read_split(
            str(local), target=evaluation.target, task=evaluation.task,
            uri=evaluation.test_rows_uri,
        )  # fmt: skip
    if rows.digest != evaluation.test_digest:
        return None, (
            f"the test rows of {who} changed since it was scored (digest {rows.digest[:12]}, "
            f"recorded {evaluation.test_digest[:12]}), so each version's score on its own test "
            "split decided"
        )
    return rows, ""


def not_like_for_like(
    client: MlflowClient, name: str, version: str, policy: Policy, why: str
) -> Callable[[str], HeadToHead]:
    """A challenge that measures nothing but records, on ``version``, why it could not meet the
    champion on the same rows: the version's tags and the decision line both say so."""

    def against(champion: str) -> HeadToHead:
        result = HeadToHead(
            champion, "unmeasured", policy.metric, None, None, "", why,
            on_schema_change=policy.on_schema_change,
        )  # fmt: skip
        with mlflow_errors(f"record the head-to-head on v{version} of {name!r}"):
            client.set_model_version_tag(name, version, result.tag, result.as_tag())
        return result

    return against


def challenge(
    client: MlflowClient,
    name: str,
    version: str,
    policy: Policy,
    rows: HeldOutRows,
    *,
    experiment_id: str,
    parent_run_id: str,
    custom: MetricSpec | None = None,
) -> Callable[[str], HeadToHead]:
    """A function that scores ``version`` against a given champion version on ``rows``,
    records the result on ``version`` and returns it (once per champion version). ``custom``
    defines the policy's metric when it is not one mlflow.evaluate computes itself."""
    done: dict[str, HeadToHead] = {}

    def against(champion: str) -> HeadToHead:
        if champion not in done:
            result = compare(
                client, name, version, champion, policy, rows,
                experiment_id=experiment_id, parent_run_id=parent_run_id, custom=custom,
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
    custom: MetricSpec | None = None,
) -> HeadToHead:
    """Evaluate both versions on ``rows``; MLflow's validation says whether the challenger wins."""
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    def verdict(
        kind: Verdict, detail: str, ours: float | None = None, theirs: float | None = None
    ) -> HeadToHead:
        return HeadToHead(
            champion, kind, policy.metric, ours, theirs, rows.digest, detail,
            on_schema_change=policy.on_schema_change, rows=len(rows), rows_uri=rows.uri,
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
    extra: list[Any] = []
    if key is None:
        why = _unmeasurable(policy.metric, custom)
        if why:
            return verdict("unmeasured", why)
        assert custom is not None
        try:
            extra = [_custom_metric(custom, rows.task)]
        except ConfigError as error:  # its module is not importable where register runs
            return verdict("unmeasured", f"{policy.metric} cannot be re-measured here: {error}")
        key = custom_metric_key(custom.name)

    def run(version: str, role: str) -> Any:
        return _evaluate(client, name, version, rows, experiment_id, parent_run_id, role, extra)

    try:
        theirs = run(champion, "champion")
    except _CannotScoreError as error:
        if error.schema:
            return verdict(
                "incomparable", f"@champion v{champion} cannot score the new rows: {error}"
            )
        return verdict("unmeasured", f"@champion v{champion} could not be scored here: {error}")
    try:
        ours = run(challenger, "challenger")
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


def _unmeasurable(metric: str, custom: MetricSpec | None) -> str:
    """Why mlflow.evaluate cannot re-measure ``metric`` ("" when it can)."""
    if custom is None:
        return (
            f"{metric} is a custom metric whose definition no evaluation record carries "
            "(metric_specs of kfp_mlflow.evaluation/v1), so it cannot be re-measured"
        )
    if custom.uses == "probabilities":
        return (
            f"{metric} is computed on class probabilities, which mlflow.evaluate does not hand "
            "to custom metrics, so it cannot be re-measured"
        )
    return ""


# Metrics MLflow's default evaluator logs under these names itself: a custom metric of the
# same name (ours only refuse our own names) would be confused with MLflow's in its results.
_MLFLOW_OWN_METRICS = frozenset(
    {
        "example_count", "score", "max_error", "mean_absolute_error", "mean_squared_error",
        "root_mean_squared_error", "mean_absolute_percentage_error", "mean_on_target",
        "sum_on_target", "r2_score", "accuracy_score", "recall_score", "precision_score",
        "f1_score", "log_loss", "roc_auc", "precision_recall_auc", "true_negatives",
        "false_positives", "false_negatives", "true_positives",
    }
)  # fmt: skip


def custom_metric_key(name: str) -> str:
    """The name a custom metric is logged under in the head-to-head runs."""
    return f"{name}_custom" if name in _MLFLOW_OWN_METRICS else name


def _custom_metric(spec: MetricSpec, task: str) -> Any:
    """``spec`` as an MLflow metric, called as ``evaluate`` calls it: (truth, predictions), as
    text labels for classifiers."""
    from mlflow.models import make_metric

    function = spec.load()
    key = custom_metric_key(spec.name)

    def eval_fn(predictions: Any, targets: Any) -> Any:
        from mlflow.metrics import MetricValue

        if task == "classification":
            truth, given = targets.astype(str).to_numpy(), predictions.astype(str).to_numpy()
        else:
            truth, given = targets, predictions.to_numpy()
        return MetricValue(aggregate_results={key: float(function(truth, given))})

    return make_metric(  # type: ignore[no-untyped-call]
        eval_fn=eval_fn, greater_is_better=spec.direction == "max", name=key
    )


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
    from kfp_mlflow.core.exceptions import KfpMlflowError

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
    custom: list[Any],
) -> Any:
    """``mlflow.models.evaluate`` of one version, in its own child run of the register run."""
    import mlflow

    target = "__target__"
    data = rows.features.copy()
    data[target] = rows.target.to_numpy()
    model_type = "regressor" if rows.task == "regression" else "classifier"
    extra = [*custom, *([] if rows.task == "regression" else [_f1_macro()])]
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
