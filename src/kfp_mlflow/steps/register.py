"""Pick the best candidate, gate it, register it, and promote it to @champion when it wins."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kfp_mlflow.exceptions import DataError, PromotionError
from kfp_mlflow.policy import Policy
from kfp_mlflow.promotion import CHAMPION, Promotion, promote, register_version, version_tags
from kfp_mlflow.provenance import provenance_tags
from kfp_mlflow.settings import Settings, get_settings
from kfp_mlflow.tracking import (
    TAG_KFP_RUN_ID,
    KfpContext,
    end_parent_run,
    log_values,
    mlflow_errors,
    run_link,
    task_run,
)


@dataclass
class Decision:
    """What register decided, for the summary, the KFP UI and the parent run."""

    model_name: str
    metric: str
    direction: str
    candidates: list[dict[str, Any]]
    winner: str | None = None
    registered_version: str | None = None
    created: bool = False
    promoted: bool = False
    champion_version: str | None = None
    previous_champion: str | None = None
    reason: str = ""
    rejected: dict[str, str] = field(default_factory=dict)
    mlflow_run_url: str | None = None


@dataclass(frozen=True)
class RegisterResult:
    version: str | None
    decision: Decision
    metadata: dict[str, Any]


def rank(
    evaluations: list[dict[str, Any]], policy: Policy
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Candidates that pass the gate, best first; and why the others were rejected."""
    passing, rejected = [], {}
    for evaluation in evaluations:
        failed = policy.failed_thresholds(evaluation["metrics"])
        if policy.metric not in evaluation["metrics"]:
            rejected[evaluation["candidate"]] = f"no {policy.metric}"
        elif failed:
            observed = evaluation["metrics"]
            rejected[evaluation["candidate"]] = "fails " + ", ".join(
                f"{t} ({t.metric}={observed.get(t.metric, float('nan')):.6g})" for t in failed
            )
        else:
            passing.append(evaluation)
    passing.sort(key=lambda e: (policy.rank_key(e["metrics"]), e["candidate"]))
    return passing, rejected


def load_evaluations(paths: list[str]) -> list[dict[str, Any]]:
    evaluations = []
    for path in paths:
        try:
            evaluations.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            raise DataError(f"evaluations: cannot read {path}: {error}") from error
    if not evaluations:
        raise DataError("evaluations: no candidate was evaluated", hint="check the search space")
    return evaluations


def run_register(
    *,
    evaluation_paths: list[str],
    model_name: str,
    primary_metric: str,
    thresholds: list[str],
    min_improvement: float,
    task: str,
    parent_run_id: str,
    kfp: KfpContext,
    decision_path: str,
    summary_path: str,
    settings: Settings | None = None,
) -> RegisterResult:
    """Register the winner (once per pipeline run) and move @champion only if it wins."""
    settings = settings or get_settings()
    policy = Policy.for_task(task, primary_metric, thresholds, min_improvement)
    if not model_name.strip():
        raise PromotionError("model_name: the registered model name is empty")
    evaluations = load_evaluations(evaluation_paths)
    with task_run(step="register", parent_run_id=parent_run_id, kfp=kfp, settings=settings) as run:
        run.log_params(
            {
                "model_name": model_name,
                "primary_metric": policy.metric,
                "direction": policy.direction,
                "thresholds": ",".join(map(str, policy.thresholds)),
                "min_improvement": policy.min_improvement,
            }
        )
        passing, rejected = rank(evaluations, policy)
        decision = Decision(
            model_name=model_name,
            metric=policy.metric,
            direction=policy.direction,
            candidates=[
                {"candidate": e["candidate"], "family": e.get("family"), "metrics": e["metrics"]}
                for e in evaluations
            ],
            rejected=rejected,
            mlflow_run_url=run_link(settings, run.experiment_id, parent_run_id),
        )
        if not passing:
            decision.reason = "no candidate passed the quality gate; nothing registered"
        else:
            _register_and_promote(
                run.client, passing[0], policy, decision, kfp, parent_run_id, settings
            )
        decision_tags = _decision_tags(decision)
        run.set_tags(decision_tags)
        log_values(
            run.client,
            parent_run_id,
            tags={"kfp_mlflow.decision": decision.reason[:4000], **decision_tags},
        )
        with mlflow_errors("record the decision"):
            run.client.log_dict(run.run_id, asdict(decision), "decision.json")
    # The last step: end the parent here so the exit handler has nothing to do on success.
    end_parent_run(run.client, parent_run_id, "SUCCEEDED", settings)
    Path(decision_path).parent.mkdir(parents=True, exist_ok=True)
    Path(decision_path).write_text(json.dumps(asdict(decision), indent=2, sort_keys=True))
    Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary_path).write_text(summary_markdown(decision))
    return RegisterResult(
        version=decision.registered_version,
        decision=decision,
        metadata={
            "winner": decision.winner,
            "registered_version": decision.registered_version,
            "promoted": decision.promoted,
            "champion_version": decision.champion_version,
        },
    )


def _register_and_promote(
    client: Any,
    winner: dict[str, Any],
    policy: Policy,
    decision: Decision,
    kfp: KfpContext,
    parent_run_id: str,
    settings: Settings,
) -> None:
    decision.winner = winner["candidate"]
    lineage = {
        TAG_KFP_RUN_ID: kfp.run_id,
        "kfp.pipeline_run_name": kfp.run_name,
        "kfp_mlflow.parent_run_id": parent_run_id,
        "kfp_mlflow.train_run_id": str(winner.get("train_run_id")),
        "kfp_mlflow.evaluate_run_id": str(winner.get("evaluate_run_id")),
        "kfp_mlflow.dataset_digest": str(winner.get("dataset_digest")),
        "kfp_mlflow.candidate": winner["candidate"],
        "kfp_mlflow.family": str(winner.get("family")),
        "kfp_mlflow.seed": str(winner.get("seed")),
        **{f"kfp_mlflow.param.{k}": str(v) for k, v in (winner.get("params") or {}).items()},
        **provenance_tags(settings),
        **version_tags(winner["metrics"], policy, gate_passed=True),
    }
    model_id = winner.get("model_id")
    version, created = register_version(
        client,
        decision.model_name,
        # One version per pipeline run: a retried or re-run register step finds it again.
        registration_key=f"{kfp.run_id}:{winner['candidate']}",
        source=f"models:/{model_id}",
        run_id=str(winner["train_run_id"]),
        model_id=str(model_id) if model_id else None,
        tags=lineage,
        description=(
            f"{winner['candidate']} from KFP run {kfp.run_name or kfp.run_id}: "
            f"{policy.metric}={winner['metrics'][policy.metric]:.6g}"
        ),
    )
    decision.registered_version = str(version.version)
    decision.created = created
    try:
        outcome: Promotion = promote(client, decision.model_name, str(version.version), policy)
    except Exception:
        if created:  # a version must not outlive the run that failed to decide on it
            _delete_quietly(client, decision.model_name, str(version.version))
        raise
    decision.promoted = outcome.promoted
    decision.champion_version = outcome.champion_version
    decision.previous_champion = outcome.previous_champion
    decision.reason = outcome.reason
    with mlflow_errors("tag the registered version"):
        client.set_model_version_tag(
            decision.model_name,
            version.version,
            "kfp_mlflow.promoted",
            str(outcome.promoted).lower(),
        )


def _delete_quietly(client: Any, name: str, version: str) -> None:
    with contextlib.suppress(Exception):  # the promotion error is the one to report
        client.delete_model_version(name, version)


def _decision_tags(decision: Decision) -> dict[str, str]:
    tags = {
        "kfp_mlflow.winner": decision.winner or "",
        "kfp_mlflow.registered_version": decision.registered_version or "",
        "kfp_mlflow.promoted": str(decision.promoted).lower(),
        "kfp_mlflow.champion_version": decision.champion_version or "",
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
