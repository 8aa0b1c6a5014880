"""Promotion's decision on head-to-head records: registry state in, target and outcome (verdict,
versions, numbers) out, no server.

The versions are MLflow's own ``ModelVersion`` entities with the tags promotion writes; the
integration tests (tests/integration/test_like_for_like.py) produce the same records for real.
"""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

from kfp_mlflow.registry.head_to_head import HeadToHead
from kfp_mlflow.registry.policy import Policy
from kfp_mlflow.registry.promotion import (
    ManualChoice,
    Outcome,
    Verdict,
    _needs_challenge,
    _target,
    _why_not,
    version_tags,
)

POLICY = Policy.for_task("regression")
PROMOTE = Policy.for_task("regression", on_schema_change="promote")
NO_CHOICE = ManualChoice(None, 0)


def _record(
    against: str, verdict: str, ours: float = 1.0, theirs: float = 2.0, **extra
) -> HeadToHead:  # type: ignore[no-untyped-def]
    return HeadToHead(against, verdict, "rmse", ours, theirs, "digest", "detail", **extra)  # type: ignore[arg-type]


def _version(number: int, rmse: float, *records: HeadToHead, **tags: str) -> ModelVersion:
    values = version_tags({"rmse": rmse}, POLICY, gate_passed=True) | tags
    values |= {record.tag: record.as_tag() for record in records}
    return ModelVersion(
        "m", str(number), 0, tags=[ModelVersionTag(k, v) for k, v in values.items()]
    )


def test_records_round_trip_and_foreign_tags_are_ignored():
    record = _record("3", "won")
    version = _version(5, 1.0, record, **{"kfp_mlflow.h2h.v9": "not json"})
    assert HeadToHead.records(version) == {"3": record}
    assert HeadToHead.of(version, "3") == record
    assert HeadToHead.of(version, "9") is None


def test_a_head_to_head_win_beats_a_better_own_split_score():
    champion = _version(1, 1.0)  # a great score on its own, easy split
    challenger = _version(2, 5.0, _record("1", "won", ours=3.0, theirs=4.0))
    target, outcome = _target([champion, challenger], champion, POLICY)
    assert target is challenger
    assert (outcome.verdict, outcome.version, outcome.champion) == (
        Verdict.WON_HEAD_TO_HEAD,
        "2",
        "1",
    )
    assert (outcome.value, outcome.champion_value) == (3.0, 4.0)
    assert outcome.record == HeadToHead.of(challenger, "1")


def test_a_lost_head_to_head_keeps_a_version_out_for_good():
    champion = _version(1, 5.0)
    loser = _version(2, 1.0, _record("1", "lost", ours=6.0, theirs=4.0))
    assert _target([champion, loser], champion, POLICY)[0] is champion
    why = _why_not([champion, loser], "2", champion, POLICY)
    assert (why.verdict, why.version, why.champion) == (Verdict.LOST_HEAD_TO_HEAD, "2", "1")
    assert (why.value, why.champion_value) == (6.0, 4.0)
    # Even once the champion it lost to is gone from the picture.
    newer = _version(3, 9.0, _record("1", "won"))
    assert _target([champion, loser, newer], newer, POLICY)[0] is newer


def test_a_stale_write_is_repaired_from_recorded_wins():
    """v4 met v2 and v3 in a race and beat both; a promoter then wrote v3 back (stale). The
    records alone say v4 beats v3, although v3's own-split score looks better."""
    v2 = _version(2, 3.0)
    v3 = _version(3, 1.0, _record("2", "won"))
    v4 = _version(4, 9.0, _record("2", "won"), _record("3", "won"))
    target, _ = _target([v2, v3, v4], v3, POLICY)
    assert target is v4


def test_beaten_versions_do_not_come_back_on_their_own_split_scores():
    old = _version(1, 1.0)
    new = _version(2, 9.0, _record("1", "won"))
    assert _target([old, new], new, POLICY)[0] is new


def test_schema_change_blocks_or_promotes_as_the_policy_recorded():
    old = _version(1, 1.0)
    blocked = _version(2, 9.0, _record("1", "incomparable", on_schema_change="block"))
    assert _target([old, blocked], old, POLICY)[0] is old
    assert _why_not([old, blocked], "2", old, POLICY).verdict is Verdict.SCHEMA_CHANGE_BLOCKED
    allowed = _version(2, 9.0, _record("1", "incomparable", on_schema_change="promote"))
    target, outcome = _target([old, allowed], old, PROMOTE)
    assert target is allowed
    assert outcome.verdict is Verdict.SCHEMA_CHANGE_PROMOTED
    # and the old champion does not win it back on its own-split score (no oscillation)
    assert _target([old, allowed], allowed, PROMOTE)[0] is allowed


def test_without_records_own_split_scores_decide_and_the_reason_says_so():
    champion = _version(1, 5.0)
    challenger = _version(2, 4.0)
    target, outcome = _target([champion, challenger], champion, POLICY)
    assert target is challenger
    assert outcome == Outcome(
        Verdict.BEATS_OWN_SPLIT, "2", "1", "rmse", 0.0, value=4.0, champion_value=5.0,
        improvement=1.0, record=None,
    )  # fmt: skip
    # Not better by enough: the champion stays, with the numbers that kept it.
    strict = Policy.for_task("regression", min_improvement=2.0)
    target, outcome = _target([champion, challenger], champion, strict)
    assert target is champion
    assert (outcome.verdict, outcome.version, outcome.improvement) == (
        Verdict.BEST_NOT_BETTER,
        "2",
        1.0,
    )
    why = _why_not([champion, challenger], "2", champion, strict)
    assert (why.verdict, why.value, why.champion_value) == (Verdict.NOT_BETTER, 4.0, 5.0)


def test_first_champion_and_nothing_eligible():
    only = _version(1, 5.0)
    target, outcome = _target([only], None, POLICY)
    assert target is only
    assert (outcome.verdict, outcome.version, outcome.value) == (Verdict.FIRST_CHAMPION, "1", 5.0)
    failed = _version(2, 1.0, **{"kfp_mlflow.gate": "failed"})
    target, outcome = _target([failed], None, POLICY)
    assert target is None and outcome.verdict is Verdict.NO_ELIGIBLE


def test_every_verdict_renders_a_reason():
    record = _record("1", "won", ours=3.0, theirs=4.0)
    for verdict in Verdict:
        outcome = Outcome(verdict, "2", "1", "rmse", 0.0, 3.0, 4.0, 1.0, record)
        assert outcome.reason, verdict


def test_a_promoter_challenges_each_new_incumbent_once_unless_it_lost():
    incumbent = _version(1, 5.0)
    fresh = _version(2, 4.0)
    assert _needs_challenge([incumbent, fresh], "2", incumbent, POLICY, NO_CHOICE)
    met = _version(2, 4.0, _record("1", "won"))
    assert not _needs_challenge([incumbent, met], "2", incumbent, POLICY, NO_CHOICE)
    moved = _version(3, 3.0)
    assert _needs_challenge([incumbent, met, moved], "2", moved, POLICY, NO_CHOICE)
    lost = _version(2, 4.0, _record("1", "lost"))
    assert not _needs_challenge([incumbent, lost, moved], "2", moved, POLICY, NO_CHOICE)
    assert not _needs_challenge([incumbent], "1", incumbent, POLICY, NO_CHOICE)


def test_a_version_not_promoted_on_own_split_scores_carries_why_not_the_same_rows():
    """Not like for like (e.g. no test rows recorded): the reason a version stays out names the
    head-to-head's own explanation, so the decision line never passes it off as like for like."""
    why = HeadToHead("1", "unmeasured", "rmse", None, None, "", "no test rows recorded")
    champion = _version(1, 1.0)
    challenger = _version(2, 5.0, why)
    assert _target([champion, challenger], champion, POLICY)[0] is champion
    outcome = _why_not([champion, challenger], "2", champion, POLICY)
    assert outcome.verdict == Verdict.NOT_BETTER and outcome.record == why
    assert why.detail in outcome.reason
    assert not why.like_for_like
