"""Registering a winner and moving ``@champion``, safely when pipelines race.

MLflow has no compare-and-set on aliases, so promotion is made *convergent* rather than locked:

* Every version that passed the quality gate carries its scores as tags.
* A promoter computes the target from registry state alone: the best eligible version, if it
  beats the current champion by more than ``min_improvement``.
* After every alias write the promoter reads the registry again and repeats until the champion
  is the target. A stale write (decided before a better version appeared) is therefore always
  repaired by its own writer, and the last writer has verified the final state.

No lease can be left behind by a killed pod, and every operation is idempotent. A human rollback
is honoured by tagging the demoted version ``kfp_mlflow.demoted=true``: it is never chosen again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from kfp_mlflow.core.exceptions import PromotionError
from kfp_mlflow.core.tag_schema import (
    METRIC_PREFIX,
    TAG_DECISION_STATE,
    TAG_DEMOTED,
    TAG_DIRECTION,
    TAG_FLOOR,
    TAG_GATE,
    TAG_PINNED,
    TAG_PRIMARY_METRIC,
    TAG_REGISTRATION_KEY,
)
from kfp_mlflow.registry.audit import record_move
from kfp_mlflow.registry.head_to_head import HeadToHead
from kfp_mlflow.registry.policy import Policy
from kfp_mlflow.registry.versions import find_version
from kfp_mlflow.tracking.runs import mlflow_errors

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.exceptions import MlflowException

CHAMPION = "champion"
METRIC_TAG_PREFIX = METRIC_PREFIX
_MAX_ROUNDS = 20
# A writer loses the race for the alias's first INSERT at most once, unless someone deletes the
# alias in between; a few attempts cover that without hiding a server that refuses every write.
_ALIAS_WRITE_ATTEMPTS = 5


class Verdict(StrEnum):
    """Why ``@champion`` is (or stays) where promotion leaves it."""

    # What the registry's state makes the target champion (``_target``).
    NO_ELIGIBLE = "no_eligible"  # none passed the gate, or all lost / were blocked / rolled back
    FIRST_CHAMPION = "first_champion"  # no champion yet: the best eligible version
    WON_HEAD_TO_HEAD = "won_head_to_head"  # beat the champion like for like (mlflow.evaluate)
    SCHEMA_CHANGE_PROMOTED = "schema_change_promoted"  # incomparable; on_schema_change=promote
    NONE_BEATS = "none_beats"  # every challenger met the champion; none won
    ALREADY_BEST = "already_best"  # on own-split scores the champion is the best
    CHAMPION_UNSCORED = "champion_unscored"  # the champion has no value for the metric
    BEATS_OWN_SPLIT = "beats_own_split"  # better by more than min_improvement, own-split scores
    BEST_NOT_BETTER = "best_not_better"  # the best challenger is not better by enough
    # Why one given version did not become champion (``_why_not``).
    LOST_HEAD_TO_HEAD = "lost_head_to_head"
    SCHEMA_CHANGE_BLOCKED = "schema_change_blocked"  # incomparable; on_schema_change=block
    NOT_COMPARABLE = "not_comparable"  # it or the champion has no value for the metric
    NOT_BETTER = "not_better"  # own-split scores: not better by more than min_improvement


@dataclass(frozen=True)
class Outcome:
    """A promotion decision as data; :attr:`reason` is the sentence rendered from it (the audit
    trail, the register step's report and the CLI show that sentence)."""

    verdict: Verdict
    version: str | None  # the version decided about: the target, or the one that was not
    champion: str | None  # the champion it was weighed against
    metric: str
    min_improvement: float
    value: float | None = None  # ``version``'s metric (own split unless ``record`` decided)
    champion_value: float | None = None
    improvement: float | None = None  # policy.improvement(value, champion_value)
    record: HeadToHead | None = None  # the like-for-like comparison behind the decision

    @property
    def reason(self) -> str:
        v, c, metric, margin = self.version, self.champion, self.metric, self.min_improvement
        scope = (
            f" ({self.record.detail})"
            if self.record and self.record.detail
            else " (each on its own test split)"
        )
        record = self.record
        match self.verdict:
            case Verdict.NO_ELIGIBLE:
                return "no eligible version (quality gate, head-to-head, rollback)"
            case Verdict.FIRST_CHAMPION:
                return f"no @{CHAMPION} yet; v{v} {metric}={self.value:.6g}"
            case Verdict.WON_HEAD_TO_HEAD:
                assert record is not None
                how = record.describe(str(v))
                return f"v{v} beats @{CHAMPION} v{c} by more than {margin:g}: {how}"
            case Verdict.SCHEMA_CHANGE_PROMOTED:
                assert record is not None
                return f"{record.detail}; policy on_schema_change=promote: v{v}"
            case Verdict.NONE_BEATS:
                return f"no eligible version beats @{CHAMPION} v{c}"
            case Verdict.ALREADY_BEST:
                return f"v{c} is already the best ({metric}={self.value:.6g})"
            case Verdict.CHAMPION_UNSCORED:
                return f"@{CHAMPION} v{c} has no {metric}; v{v} wins"
            case Verdict.BEATS_OWN_SPLIT:
                return (
                    f"v{v} {metric}={self.value:.6g} beats @{CHAMPION} v{c} "
                    f"({self.champion_value:.6g}) by {self.improvement:.6g} > {margin:g}{scope}"
                )
            case Verdict.BEST_NOT_BETTER:
                return (
                    f"best challenger v{v} {metric}={self.value:.6g} is not better than "
                    f"@{CHAMPION} v{c} ({self.champion_value:.6g}) by more than {margin:g} "
                    f"(improvement {self.improvement:.6g}){scope}"
                )
            case Verdict.LOST_HEAD_TO_HEAD:
                assert record is not None
                return (
                    f"v{v} does not beat @{CHAMPION} v{c} by more than {margin:g}: "
                    f"{record.describe(str(v))}"
                )
            case Verdict.SCHEMA_CHANGE_BLOCKED:
                assert record is not None
                return f"{record.detail}; policy on_schema_change=block: v{v} not promoted"
            case Verdict.NOT_COMPARABLE:
                return f"v{v} is not comparable with @{CHAMPION} v{c}"
            case Verdict.NOT_BETTER:
                return (
                    f"v{v} {metric}={self.value:.6g} does not beat @{CHAMPION} v{c} "
                    f"({self.champion_value:.6g}) by more than {margin:g} "
                    f"(improvement {self.improvement:.6g}){scope}"
                )


@dataclass(frozen=True)
class Promotion:
    """What happened to ``@champion``, and why (``outcome``: the decision as data)."""

    promoted: bool
    champion_version: str | None
    previous_champion: str | None
    outcome: Outcome

    @property
    def reason(self) -> str:
        return self.outcome.reason


def version_metric(version: ModelVersion, metric: str) -> float | None:
    raw = version.tags.get(METRIC_TAG_PREFIX + metric)
    return float(raw) if raw not in (None, "") else None


def register_version(
    client: MlflowClient,
    name: str,
    *,
    registration_key: str,
    source: str,
    run_id: str,
    model_id: str | None,
    tags: dict[str, str],
    description: str,
) -> tuple[ModelVersion, bool]:
    """The version for ``registration_key``: found if registered before, else created.

    Returns (version, created). A re-run of the same register step finds its version.
    """
    from mlflow.exceptions import MlflowException

    with mlflow_errors(f"register a version of {name!r}"):
        existing = _find_by_key(client, name, registration_key)
        if existing is not None:
            return existing, False
        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.create_model_version(
            name,
            source=source,
            run_id=run_id,
            model_id=model_id,
            tags={**tags, TAG_REGISTRATION_KEY: registration_key},
            description=description,
        )
    return version, True


def _find_by_key(client: MlflowClient, name: str, key: str) -> ModelVersion | None:
    for version in _versions(client, name):
        if version.tags.get(TAG_REGISTRATION_KEY) == key:
            return version
    return None


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    from mlflow.exceptions import MlflowException

    escaped = name.replace("'", "\\'")
    try:
        return list(client.search_model_versions(f"name = '{escaped}'"))
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise


def current_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    return find_version(client, name, alias=CHAMPION)


@dataclass(frozen=True)
class ManualChoice:
    """The last person's decision (rollback or approval), sticky against automatic promotion:
    only versions registered after it (number > ``floor``) can displace ``pinned``."""

    pinned: str | None
    floor: int


def manual_choice(client: MlflowClient, name: str) -> ManualChoice:
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return ManualChoice(None, 0)
        raise
    return ManualChoice(tags.get(TAG_PINNED) or None, int(tags.get(TAG_FLOOR) or 0))


def _eligible(
    versions: list[ModelVersion], policy: Policy, manual: ManualChoice
) -> list[ModelVersion]:
    """Versions promotion may choose: gate passed, not demoted, not left undecided by a pipeline
    run that died, newer than a person's choice, and still in the running after their
    head-to-heads: none lost, none blocked by a schema change, and not beaten by another version
    in one."""
    beaten = {
        record.against
        for version in versions
        for record in HeadToHead.records(version).values()
        if _beats(record)
    }
    return [
        version
        for version in versions
        if version.tags.get(TAG_GATE) == "passed"
        and version.tags.get(TAG_DEMOTED, "").lower() != "true"
        and version.tags.get(TAG_DECISION_STATE) != "interrupted"
        and int(version.version) > manual.floor
        and version_metric(version, policy.metric) is not None
        and not any(_out(record) for record in HeadToHead.records(version).values())
        and version.version not in beaten
    ]


def _out(record: HeadToHead) -> bool:
    return record.verdict == "lost" or (
        record.verdict == "incomparable" and record.on_schema_change != "promote"
    )


def _beats(record: HeadToHead | None) -> bool:
    """A head-to-head that makes its challenger displace that champion."""
    return record is not None and (
        record.verdict == "won"
        or (record.verdict == "incomparable" and record.on_schema_change == "promote")
    )


def _target(
    versions: list[ModelVersion],
    champion: ModelVersion | None,
    policy: Policy,
    manual: ManualChoice | None = None,
) -> tuple[ModelVersion | None, Outcome]:
    """The version that should be champion now, and why."""
    manual = manual or ManualChoice(None, 0)
    if manual.pinned is not None:
        # A person chose: that version is the incumbent whatever the alias says right now (a
        # racing promoter's stale write is repaired), and only newer versions may challenge it.
        champion = next((v for v in versions if v.version == manual.pinned), champion)
    incumbent = champion.version if champion else None

    def outcome(verdict: Verdict, version: ModelVersion | None, **numbers: Any) -> Outcome:
        return Outcome(
            verdict,
            version.version if version is not None else None,
            incumbent,
            policy.metric,
            policy.min_improvement,
            **numbers,
        )

    eligible = _eligible(versions, policy, manual)
    if not eligible:
        return champion, outcome(Verdict.NO_ELIGIBLE, None)

    def best_of(candidates: list[ModelVersion]) -> ModelVersion:
        # Best first; on a tie the older version wins, so equal re-runs never move the alias.
        return min(
            candidates,
            key=lambda v: (
                policy.sort_key(version_metric(v, policy.metric) or 0.0),
                int(v.version),
            ),
        )

    if champion is None:
        best = best_of(eligible)
        return best, outcome(
            Verdict.FIRST_CHAMPION, best, value=version_metric(best, policy.metric)
        )
    # Like for like first: versions that beat this champion on their own test rows.
    winners = [
        v
        for v in eligible
        if v.version != champion.version and _beats(HeadToHead.of(v, champion.version))
    ]
    if winners:
        best = best_of(winners)
        record = HeadToHead.of(best, champion.version)
        assert record is not None
        if record.verdict == "incomparable":
            return best, outcome(Verdict.SCHEMA_CHANGE_PROMOTED, best, record=record)
        return best, outcome(
            Verdict.WON_HEAD_TO_HEAD,
            best,
            value=record.challenger,
            champion_value=record.champion,
            record=record,
        )
    # Versions never compared with this champion (registered before head-to-heads, racing ones,
    # a metric mlflow.evaluate lacks): each version's own-split score is all there is, and the
    # reason says so.
    unmet = [
        v
        for v in eligible
        if v.version == champion.version
        or (record := HeadToHead.of(v, champion.version)) is None
        or record.verdict == "unmeasured"
    ]
    if not unmet:
        return champion, outcome(Verdict.NONE_BEATS, None)
    best = best_of(unmet)
    best_value = version_metric(best, policy.metric)
    assert best_value is not None
    if best.version == champion.version:
        return champion, outcome(Verdict.ALREADY_BEST, champion, value=best_value)
    champion_value = version_metric(champion, policy.metric)
    if champion_value is None:
        return best, outcome(Verdict.CHAMPION_UNSCORED, best, value=best_value)
    gain = policy.improvement(best_value, champion_value)
    numbers = {
        "value": best_value,
        "champion_value": champion_value,
        "improvement": gain,
        "record": HeadToHead.of(best, champion.version),
    }
    if gain > policy.min_improvement:
        return best, outcome(Verdict.BEATS_OWN_SPLIT, best, **numbers)
    return champion, outcome(Verdict.BEST_NOT_BETTER, best, **numbers)


def promote(
    client: MlflowClient,
    name: str,
    version: str,
    policy: Policy,
    actor: str = "",
    challenge: Callable[[str], HeadToHead] | None = None,
) -> Promotion:
    """Converge ``@champion`` on the best eligible version; report what it means for ``version``.

    ``challenge(champion_version)`` (see :func:`kfp_mlflow.registry.head_to_head.challenge`) scores
    ``version`` against that champion on ``version``'s own test rows and records the result on
    it; it is called whenever the incumbent is one ``version`` was not yet compared with, so a
    racing promoter re-challenges whichever champion it finds. Every alias move this promoter
    makes is recorded in the audit trail (``actor``: who asked).
    """
    previous: str | None = None
    decisive: Outcome | None = None  # why the alias was moved, if this promoter moved it
    with mlflow_errors(f"promote a version of {name!r}"):
        for round_ in range(_MAX_ROUNDS):
            champion = current_champion(client, name)
            if round_ == 0:
                previous = champion.version if champion else None
            versions = _versions(client, name)
            manual = manual_choice(client, name)
            incumbent = _incumbent(versions, champion, manual)
            if challenge is not None and _needs_challenge(
                versions, version, incumbent, policy, manual
            ):
                assert incumbent is not None
                challenge(incumbent.version)
                versions = _versions(client, name)
            target, outcome = _target(versions, champion, policy, manual)
            if target is None or (champion is not None and target.version == champion.version):
                final = champion.version if champion else None
                if final == version:
                    outcome = decisive or outcome
                elif champion is not None:
                    outcome = _why_not(versions, version, champion, policy)
                return Promotion(
                    promoted=final == version,
                    champion_version=final,
                    previous_champion=previous,
                    outcome=outcome,
                )
            decisive = outcome
            _set_alias(client, name, target.version)
            record_move(
                client,
                name,
                from_version=champion.version if champion else None,
                to_version=target.version,
                action="pipeline",
                reason=outcome.reason,
                actor=actor,
            )
    raise PromotionError(
        f"@{CHAMPION} of {name!r} did not settle after {_MAX_ROUNDS} rounds",
        hint="another process keeps moving the alias; check for a conflicting promoter",
    )


def _incumbent(
    versions: list[ModelVersion], champion: ModelVersion | None, manual: ManualChoice
) -> ModelVersion | None:
    if manual.pinned is not None:
        return next((v for v in versions if v.version == manual.pinned), champion)
    return champion


def _needs_challenge(
    versions: list[ModelVersion],
    version: str,
    incumbent: ModelVersion | None,
    policy: Policy,
    manual: ManualChoice,
) -> bool:
    """``version`` is still in the running and has not met this incumbent yet."""
    if incumbent is None or incumbent.version == version:
        return False
    mine = next((v for v in _eligible(versions, policy, manual) if v.version == version), None)
    return mine is not None and incumbent.version not in HeadToHead.records(mine)


def _why_not(
    versions: list[ModelVersion], version: str, champion: ModelVersion, policy: Policy
) -> Outcome:
    """Why ``version`` did not become champion, in terms of the policy."""
    mine = next((v for v in versions if v.version == version), None)
    records = HeadToHead.records(mine) if mine is not None else {}
    record = records.get(champion.version) or next((r for r in records.values() if _out(r)), None)

    def outcome(verdict: Verdict, against: str, **numbers: Any) -> Outcome:
        return Outcome(verdict, version, against, policy.metric, policy.min_improvement, **numbers)

    if record is not None and record.verdict == "lost":
        return outcome(
            Verdict.LOST_HEAD_TO_HEAD,
            record.against,
            value=record.challenger,
            champion_value=record.champion,
            record=record,
        )
    if record is not None and record.verdict == "incomparable" and _out(record):
        return outcome(Verdict.SCHEMA_CHANGE_BLOCKED, record.against, record=record)
    ours = version_metric(mine, policy.metric) if mine is not None else None
    theirs = version_metric(champion, policy.metric)
    if ours is None or theirs is None:
        return outcome(Verdict.NOT_COMPARABLE, champion.version, value=ours, champion_value=theirs)
    return outcome(
        Verdict.NOT_BETTER,
        champion.version,
        value=ours,
        champion_value=theirs,
        improvement=policy.improvement(ours, theirs),
        # Own-split scores decided; the head-to-head, when there is one, says why not the same
        # rows (e.g. no test rows recorded), and the reason carries it.
        record=record,
    )


def is_alias_write_conflict(error: MlflowException) -> bool:
    """True only for the refusal the loser of two simultaneous first writes of an alias gets.

    MLflow sets an alias by reading it, then INSERTing (absent) or UPDATEing it. When two writers
    both find it absent, the second INSERT violates the alias table's primary key and the server
    answers HTTP 400: ``(psycopg2.errors.UniqueViolation) ... "registered_model_alias_pk"`` on
    PostgreSQL, ``(sqlite3.IntegrityError) UNIQUE constraint failed: registered_model_aliases.``
    on SQLite (both seen in the race tests). A second attempt finds the row and updates it.
    Every other 400 is a real refusal and is not retried.
    """
    if error.error_code != "BAD_REQUEST":  # HTTP 400, how the server answers database errors
        return False
    text = str(error.message)
    return ("UniqueViolation" in text and "registered_model_alias_pk" in text) or (
        "UNIQUE constraint failed: registered_model_aliases." in text
    )


def _set_alias(client: MlflowClient, name: str, version: str) -> None:
    """Set the alias, retrying the bounded number of times a concurrent first write can refuse it.

    The caller re-reads the registry after every write, so a retried write that turns out stale
    is repaired like any other.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(1, _ALIAS_WRITE_ATTEMPTS + 1):
        try:
            client.set_registered_model_alias(name, CHAMPION, version)
            return
        except MlflowException as error:
            if attempt == _ALIAS_WRITE_ATTEMPTS or not is_alias_write_conflict(error):
                raise
            time.sleep(0.05 * attempt)


def version_tags(metrics: dict[str, Any], policy: Policy, gate_passed: bool) -> dict[str, str]:
    """Tags that make a version comparable to later challengers."""
    tags = {METRIC_TAG_PREFIX + k: repr(float(v)) for k, v in metrics.items()}
    tags[TAG_GATE] = "passed" if gate_passed else "failed"
    tags[TAG_PRIMARY_METRIC] = policy.metric
    tags[TAG_DIRECTION] = policy.direction
    return tags
