"""Pick the best candidate, gate it, register it, and promote it to @champion when it wins."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kfp_mlflow.core.contracts import Decision, EvaluationInfo
from kfp_mlflow.core.exceptions import ContractError, DataError, GateError
from kfp_mlflow.core.naming import check_model_name
from kfp_mlflow.core.settings import Settings, get_settings
from kfp_mlflow.core.tag_schema import (
    PARAM_PREFIX,
    TAG_CANDIDATE,
    TAG_CHAMPION_VERSION,
    TAG_DATASET_DIGEST,
    TAG_DECISION,
    TAG_DECISION_STATE,
    TAG_EVALUATE_RUN_ID,
    TAG_FAMILY,
    TAG_KFP_RUN_ID,
    TAG_KFP_RUN_NAME,
    TAG_PARENT_RUN_ID,
    TAG_PROMOTED,
    TAG_RECIPE,
    TAG_REGISTERED_VERSION,
    TAG_SEED,
    TAG_SNAPSHOT_URI,
    TAG_TEST_DIGEST,
    TAG_TEST_ROWS_URI,
    TAG_TRAIN_RUN_ID,
    TAG_WINNER,
)
from kfp_mlflow.models.metrics import METRIC_DIRECTIONS, Direction, MetricSpec
from kfp_mlflow.models.recipes import recipe
from kfp_mlflow.registry.head_to_head import (
    HeadToHead,
    HeldOutRows,
    challenge,
    held_out_rows,
    not_like_for_like,
)
from kfp_mlflow.registry.policy import DEFAULT_PRIMARY_METRIC, FALLBACK_METRIC, Policy
from kfp_mlflow.registry.promotion import (
    CHAMPION,
    Promotion,
    promote,
    register_version,
    version_tags,
)
from kfp_mlflow.tracking.provenance import provenance_tags
from kfp_mlflow.tracking.runs import TaskRun, log_values, mlflow_errors, run_link


@dataclass(frozen=True)
class RegisterResult:
    version: str | None
    decision: Decision


def rank(
    evaluations: list[EvaluationInfo], policy: Policy
) -> tuple[list[EvaluationInfo], dict[str, str]]:
    """Candidates that pass the gate, best first; and why the others were rejected."""
    passing, rejected = [], {}
    for evaluation in evaluations:
        observed = evaluation.metrics
        failed = policy.failed_thresholds(observed)
        shortfall = policy.baseline_shortfall(observed, evaluation.baseline)
        if policy.metric not in observed:
            rejected[evaluation.candidate] = f"no {policy.metric}"
        elif failed:
            rejected[evaluation.candidate] = "fails " + ", ".join(
                f"{t} ({t.metric}={observed.get(t.metric, float('nan')):.6g})" for t in failed
            )
        elif shortfall:
            rejected[evaluation.candidate] = shortfall
        else:
            passing.append(evaluation)
    passing.sort(key=lambda e: (policy.rank_key(e.metrics), e.candidate))
    return passing, rejected


def policy_for(
    evaluations: list[EvaluationInfo],
    primary_metric: str,
    thresholds: list[str],
    min_improvement: float,
    on_schema_change: str = "block",
) -> Policy:
    """The policy for these evaluations: one task, custom metrics as they declared them."""
    if not evaluations:
        raise DataError("evaluations: no candidate was evaluated", hint="check the search space")
    tasks = {evaluation.task for evaluation in evaluations}
    if len(tasks) > 1:
        raise ContractError(
            f"register: evaluations mix task types {sorted(tasks)}",
            hint="register candidates trained on the same preprocess output",
        )
    task = tasks.pop()
    custom: dict[str, Direction] = {}
    for evaluation in evaluations:
        for name, direction in evaluation.directions.items():
            if name not in METRIC_DIRECTIONS:
                custom[name] = direction
    policy = Policy.for_task(
        task, primary_metric, thresholds, min_improvement, custom, on_schema_change
    )
    if not primary_metric and not any(policy.metric in e.metrics for e in evaluations):
        # The default metric does not exist for these models (e.g. no class probabilities):
        # decide on the declared fallback, with its own default gate, and say so.
        fallback = FALLBACK_METRIC[task]
        policy = Policy.for_task(
            task, fallback, thresholds or [], min_improvement, custom, on_schema_change
        )
        return replace(
            policy, note=f"{DEFAULT_PRIMARY_METRIC[task]} unavailable; decided on {fallback}"
        )
    return policy


def run_register(
    run: TaskRun,
    *,
    evaluations: list[EvaluationInfo],
    model_name: str,
    primary_metric: str,
    thresholds: list[str],
    min_improvement: float,
    decision_path: str,
    summary_path: str,
    test_rows: HeldOutRows | None = None,
    on_schema_change: str = "block",
    settings: Settings | None = None,
) -> RegisterResult:
    """Register the winner (once per pipeline run) and move @champion only if it wins.

    The winner meets @champion like for like: both scored on the rows the winner was evaluated
    on (:mod:`kfp_mlflow.registry.head_to_head`) — ``test_rows`` when given, else the rows its
    evaluation record points to. When that cannot be done (no rows recorded, a metric that
    cannot be re-measured), each version's score on its own test split decides, and the
    reason and the version's tags say why.
    """
    settings = settings or get_settings()
    check_model_name(model_name)
    policy = policy_for(evaluations, primary_metric, thresholds, min_improvement, on_schema_change)
    run.log_params(
        {
            "model_name": model_name,
            "primary_metric": policy.metric,
            "direction": policy.direction,
            "thresholds": ",".join(map(str, policy.thresholds)),
            "min_improvement": policy.min_improvement,
            "on_schema_change": policy.on_schema_change,
        }
    )
    passing, rejected = rank(evaluations, policy)
    fields: dict[str, Any] = {
        "model_name": model_name,
        "metric": policy.metric,
        "direction": policy.direction,
        "candidates": [
            {"candidate": e.candidate, "family": e.family, "metrics": e.metrics}
            for e in evaluations
        ],
        "rejected": rejected,
        "mlflow_run_url": run_link(settings, run.experiment_id, run.parent_run_id),
    }
    if not passing:
        fields["reason"] = "no candidate passed the quality gate; nothing registered: " + "; ".join(
            f"{name} {why}" for name, why in rejected.items()
        )
    else:
        fields |= _register_and_promote(
            run, passing[0], policy, model_name, settings, test_rows,
            _metric_spec(evaluations, policy.metric),
        )  # fmt: skip
    notes = [policy.note] if policy.note else []
    splits = {e.test_digest for e in evaluations if e.test_digest}
    if len(splits) > 1:
        # The ranking compared numbers from different rows: worth saying, never hidden.
        notes.append(f"candidates were scored on {len(splits)} different test splits")
    if notes:
        fields["reason"] = f"{'; '.join(notes)}. {fields['reason']}"
    decision = Decision(**fields)
    decision_tags = _decision_tags(decision)
    run.set_tags(decision_tags)
    log_values(
        run.client,
        run.parent_run_id,
        tags={TAG_DECISION: decision.reason[:4000], **decision_tags},
    )
    run.log_dict(decision.model_dump(mode="json"), "decision.json")
    Path(decision_path).parent.mkdir(parents=True, exist_ok=True)
    Path(decision_path).write_text(json.dumps(decision.as_metadata(), indent=2, sort_keys=True))
    Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary_path).write_text(summary_markdown(decision))
    if not passing:  # a schedule must notice: the step fails, with the decision on record
        raise GateError(decision.reason[:1000], hint="see the decision in the register run")
    return RegisterResult(version=decision.registered_version, decision=decision)


def _register_and_promote(
    run: TaskRun,
    winner: EvaluationInfo,
    policy: Policy,
    model_name: str,
    settings: Settings,
    test_rows: HeldOutRows | None,
    custom: MetricSpec | None,
) -> dict[str, Any]:
    client, kfp = run.client, run.kfp
    lineage = {
        TAG_KFP_RUN_ID: kfp.run_id,
        TAG_KFP_RUN_NAME: kfp.run_name,
        TAG_PARENT_RUN_ID: run.parent_run_id,
        TAG_TRAIN_RUN_ID: winner.train_run_id,
        TAG_EVALUATE_RUN_ID: winner.evaluate_run_id,
        TAG_DATASET_DIGEST: winner.dataset_digest,
        TAG_CANDIDATE: winner.candidate,
        TAG_FAMILY: winner.family,
        TAG_SEED: str(winner.seed),
        **{f"{PARAM_PREFIX}{k}": str(v) for k, v in winner.params.items()},
        **provenance_tags(settings),
        **version_tags(winner.metrics, policy, gate_passed=True),
    }
    lineage[TAG_DECISION_STATE] = "pending"
    if winner.test_digest and winner.test_rows_uri:
        lineage |= {TAG_TEST_DIGEST: winner.test_digest, TAG_TEST_ROWS_URI: winner.test_rows_uri}
    rebuild = recipe(winner)
    if rebuild is not None:
        lineage |= {TAG_RECIPE: rebuild.model_dump_json(), TAG_SNAPSHOT_URI: rebuild.data}
    version, created = register_version(
        client,
        model_name,
        # One version per pipeline run: a retried or re-run register step finds it again.
        registration_key=f"{kfp.run_id}:{winner.candidate}",
        source=f"models:/{winner.model_id}"
        if winner.model_id
        else f"runs:/{winner.train_run_id}/model",
        run_id=winner.train_run_id,
        model_id=winner.model_id,
        tags=lineage,
        description=(
            f"{winner.candidate} from KFP run {kfp.run_name or kfp.run_id}: "
            f"{policy.metric}={winner.metrics[policy.metric]:.6g}"
        ),
    )
    registered = str(version.version)
    chosen: list[Callable[[str], HeadToHead]] = []

    def rival(champion: str) -> HeadToHead:
        # The rows are fetched when there is a champion to meet, not on a first run.
        if not chosen:
            rows, why = test_rows, ""
            if rows is None:
                rows, why = held_out_rows(winner, client.tracking_uri)
            if rows is None:
                chosen.append(not_like_for_like(client, model_name, registered, policy, why))
            else:
                measure = challenge(
                    client, model_name, registered, policy, rows,
                    experiment_id=run.experiment_id, parent_run_id=run.run_id, custom=custom,
                )  # fmt: skip
                chosen.append(measure)
        return chosen[0](champion)

    try:
        outcome: Promotion = promote(
            client, model_name, registered, policy,
            actor=f"KFP run {kfp.run_name or kfp.run_id}", challenge=rival,
        )  # fmt: skip
    except Exception:
        if created:  # a version must not outlive the run that failed to decide on it
            _delete_quietly(client, model_name, str(version.version))
        raise
    with mlflow_errors("tag the registered version"):
        client.set_model_version_tag(
            model_name, version.version, TAG_PROMOTED, str(outcome.promoted).lower()
        )
        client.set_model_version_tag(model_name, version.version, TAG_DECISION_STATE, "decided")
    return {
        "winner": winner.candidate,
        "registered_version": str(version.version),
        "created": created,
        "promoted": outcome.promoted,
        "champion_version": outcome.champion_version,
        "previous_champion": outcome.previous_champion,
        "reason": outcome.reason,
        "head_to_head": _head_to_head(client, model_name, registered, outcome.previous_champion),
    }


def _metric_spec(evaluations: list[EvaluationInfo], metric: str) -> MetricSpec | None:
    """How ``metric`` was defined, if it is a custom metric an evaluation record carries."""
    for evaluation in evaluations:
        for raw in evaluation.metric_specs:
            if raw.get("name") == metric:
                return MetricSpec.parse(raw)
    return None


def _head_to_head(
    client: Any, name: str, version: str, champion: str | None
) -> dict[str, Any] | None:
    """The registered version's head-to-head with the final champion (or its last one)."""
    with mlflow_errors(f"read v{version} of {name!r}"):
        records = HeadToHead.records(client.get_model_version(name, version))
    record = records.get(champion or "") or (records[max(records, key=int)] if records else None)
    return None if record is None else asdict(record)


def _delete_quietly(client: Any, name: str, version: str) -> None:
    with contextlib.suppress(Exception):  # the promotion error is the one to report
        client.delete_model_version(name, version)


def _decision_tags(decision: Decision) -> dict[str, str]:
    tags = {
        TAG_WINNER: decision.winner or "",
        TAG_REGISTERED_VERSION: decision.registered_version or "",
        TAG_PROMOTED: str(decision.promoted).lower(),
        TAG_CHAMPION_VERSION: decision.champion_version or "",
    }
    return {k: v for k, v in tags.items() if v}


def summary_markdown(decision: Decision) -> str:
    """The decision as Markdown (KFP UI visualisation and MLflow artifact)."""
    arrow = "lower is better" if decision.direction == "min" else "higher is better"
    lines = [
        f"# Model `{decision.model_name}`",
        "",
        f"Primary metric: **{decision.metric}** ({arrow})",
        "",
    ]
    metric_names = sorted({k for c in decision.candidates for k in c["metrics"]})
    lines.append("| candidate | " + " | ".join(metric_names) + " | gate |")
    lines.append("|---" * (len(metric_names) + 2) + "|")
    for c in decision.candidates:
        values = " | ".join(f"{c['metrics'].get(m, float('nan')):.4g}" for m in metric_names)
        gate = decision.rejected.get(c["candidate"], "passed")
        mark = " **(winner)**" if c["candidate"] == decision.winner else ""
        lines.append(f"| {c['candidate']}{mark} | {values} | {gate} |")
    lines += ["", f"Decision: {decision.reason}", ""]
    if decision.mlflow_run_url:
        url = decision.mlflow_run_url
        lines += [f"MLflow pipeline run: [{url}]({url})", ""]
    if decision.registered_version:
        status = "is now" if decision.promoted else "is not"
        lines.append(
            f"Registered version **{decision.registered_version}** {status} @{CHAMPION} "
            f"(@{CHAMPION}: v{decision.champion_version})."
        )
    return "\n".join(lines) + "\n"
