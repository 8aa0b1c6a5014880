"""Concurrent register steps against one registered model: the best ends as @champion, once each.

Measured before this design: an uncoordinated read-compare-set promotion ended with the wrong
champion in 3 of 6 trials. Here the register steps run in separate processes released together,
against SQLite and against PostgreSQL (the backend the manifests deploy). On both, simultaneous
first writes of an alias can collide on its primary key (HTTP 400); promotion retries exactly that.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.registry.policy import Policy
from kfp_mlflow.registry.promotion import (
    CHAMPION,
    TAG_REGISTRATION_KEY,
    is_alias_write_conflict,
    promote,
    register_version,
    version_tags,
)
from kfp_mlflow.tracking.runs import KfpContext, open_parent_run
from tests.integration.conftest import client, tracked_environment

RACERS = 6


def _logged_model(mlflow, experiment_name: str) -> tuple[str, str]:
    """A real LoggedModel to register (every racer registers the same artifact)."""
    experiment = mlflow.get_experiment_by_name(experiment_name)
    run = mlflow.create_run(experiment.experiment_id, run_name="train")
    model = mlflow.create_logged_model(
        experiment.experiment_id, name="m", source_run_id=run.info.run_id
    )
    mlflow.finalize_logged_model(model.model_id, "READY")
    mlflow.set_terminated(run.info.run_id)
    return run.info.run_id, model.model_id


def _register(mlflow, name, key, train_run, model_id, metrics):  # type: ignore[no-untyped-def]
    return register_version(
        mlflow, name, registration_key=key, source=f"models:/{model_id}", run_id=train_run,
        model_id=model_id, description="",
        tags=version_tags(metrics, Policy.for_task("regression"), gate_passed=True),
    )  # fmt: skip


def _racer(
    barrier, environment: dict[str, str], index: int, rmse: float, evaluation: str, out: str
) -> None:
    import os

    os.environ.update(environment)
    from kfp_mlflow.core.contracts import EvaluationInfo
    from kfp_mlflow.steps.register import run_register
    from kfp_mlflow.tracking.runs import KfpContext, task_run

    kfp = KfpContext(run_id=f"race-{index}", task_name="register")
    record = EvaluationInfo.model_validate_json(Path(evaluation).read_text())
    with task_run(step="register", kfp=kfp) as run:
        barrier.wait()
        run_register(
            run, evaluations=[record],
            model_name=environment["KFP_MLFLOW_MODEL_NAME"],
            primary_metric="rmse", thresholds=["r2>=0.0"], min_improvement=0.0,
            decision_path=f"{out}/decision-{index}", summary_path=f"{out}/summary-{index}",
        )  # fmt: skip


# Two shuffles on SQLite, one on PostgreSQL to keep CI time in check; the alias-key collision is
# forced and counted on PostgreSQL by test_simultaneous_first_alias_writes_on_postgresql_converge.
@pytest.mark.parametrize(
    ("backend_server", "trial"),
    [("sqlite", 0), ("sqlite", 1), ("postgresql", 0)],
    indirect=["backend_server"],
)
def test_concurrent_register_steps_converge_on_the_best(backend_server, trial, tmp_path):
    with tracked_environment(backend_server, tmp_path / "work") as environment:
        mlflow = client()
        open_parent_run(KfpContext(run_id="setup"), get_settings())
        train_run, model_id = _logged_model(mlflow, environment["MLFLOW_EXPERIMENT_NAME"])
        scores = random.Random(trial).sample(range(40, 40 + RACERS * 5, 5), RACERS)
        evaluations = []
        for index, rmse in enumerate(scores):
            path = tmp_path / f"evaluation-{index}.json"
            path.write_text(json.dumps({
                "candidate": f"c{index}", "family": "linear", "params": {}, "task": "regression",
                "metrics": {"rmse": float(rmse), "r2": 0.5, "mae": 1.0},
                "directions": {"rmse": "min", "r2": "max", "mae": "min"},
                "train_run_id": train_run, "model_id": model_id, "evaluate_run_id": train_run,
                "dataset_digest": "d", "seed": 0,
            }))  # fmt: skip
            evaluations.append(str(path))
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(RACERS)
        racers = [
            context.Process(
                target=_racer,
                args=(barrier, dict(environment), i, s, evaluations[i], str(tmp_path)),
            )
            for i, s in enumerate(scores)
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=240)
        assert [r.exitcode for r in racers] == [0] * RACERS

        name = environment["KFP_MLFLOW_MODEL_NAME"]
        versions = mlflow.search_model_versions(f"name = '{name}'")
        keys = [v.tags[TAG_REGISTRATION_KEY] for v in versions]
        assert sorted(keys) == sorted(f"race-{i}:c{i}" for i in range(RACERS))  # once each
        champion = mlflow.get_model_version_by_alias(name, CHAMPION)
        assert float(champion.tags["kfp_mlflow.metric.rmse"]) == min(scores)
        decisions = [
            json.loads(Path(tmp_path / f"decision-{i}").read_text()) for i in range(RACERS)
        ]
        # The best racer reports its promotion; another may truthfully report one that a better
        # racer superseded a moment later, but nobody reports a champion that never existed.
        best = decisions[scores.index(min(scores))]
        assert best["promoted"] is True
        assert best["registered_version"] == champion.version
        assert {d["champion_version"] for d in decisions} <= {v.version for v in versions}


def test_a_stale_alias_write_is_repaired_by_its_writer(tracked):
    """The convergence step in isolation: a promoter that set a worse champion re-checks."""
    mlflow = client()
    open_parent_run(KfpContext(run_id="s"), get_settings())
    train_run, model_id = _logged_model(mlflow, tracked["MLFLOW_EXPERIMENT_NAME"])
    policy = Policy.for_task("regression")
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    made = []
    for key, rmse in (("worse", 50.0), ("better", 40.0)):
        version, created = _register(mlflow, name, key, train_run, model_id, {"rmse": rmse})
        assert created
        made.append(version.version)
    mlflow.set_registered_model_alias(name, CHAMPION, made[0])  # the stale write
    outcome = promote(mlflow, name, made[0], policy)
    assert outcome.champion_version == made[1]
    assert outcome.promoted is False
    assert "does not beat" in outcome.reason
    # Registering the same key again finds the version instead of creating one.
    again, created = _register(mlflow, name, "worse", train_run, model_id, {"rmse": 1.0})
    assert (again.version, created) == (made[0], False)


def test_demoted_versions_are_never_promoted_again(tracked):
    mlflow = client()
    open_parent_run(KfpContext(run_id="d"), get_settings())
    train_run, model_id = _logged_model(mlflow, tracked["MLFLOW_EXPERIMENT_NAME"])
    policy = Policy.for_task("regression")
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    versions = []
    for key, rmse in (("old", 50.0), ("bad-in-production", 40.0)):
        version, _ = _register(mlflow, name, key, train_run, model_id, {"rmse": rmse})
        versions.append(version.version)
    assert promote(mlflow, name, versions[1], policy).champion_version == versions[1]
    # A person rolls back: demote the bad version, point @champion at the old one.
    mlflow.set_model_version_tag(name, versions[1], "kfp_mlflow.demoted", "true")
    mlflow.set_registered_model_alias(name, CHAMPION, versions[0])
    assert promote(mlflow, name, versions[0], policy).champion_version == versions[0]


class _CountingClient:
    """The real client, counting the alias-key conflicts the server answers (then re-raised)."""

    def __init__(self, real) -> None:  # type: ignore[no-untyped-def]
        self._real = real
        self._lock = threading.Lock()
        self.conflicts = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._real, name)

    def set_registered_model_alias(self, *args: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._real.set_registered_model_alias(*args)
        except MlflowException as error:
            if is_alias_write_conflict(error):
                with self._lock:
                    self.conflicts += 1
            raise


def _promote_together(barrier, mlflow, name, version, policy):  # type: ignore[no-untyped-def]
    barrier.wait()
    return promote(mlflow, name, version, policy)


def test_simultaneous_first_alias_writes_on_postgresql_converge(mlflow_server_postgres, tmp_path):
    """Promoters released together onto a model with no @champion: every one ends without error.

    Each round deletes the alias first, since only its first INSERT can collide. Rounds repeat
    until PostgreSQL has refused at least one write (UniqueViolation on registered_model_alias_pk),
    so the test proves the retry was exercised, not merely that the race happened not to occur.
    """
    # About one round in three collides (85 rounds measured); 60 make a miss ~1e-8 even at p=0.25.
    writers, max_rounds = 6, 60
    with tracked_environment(mlflow_server_postgres, tmp_path / "work") as environment:
        mlflow = client()
        open_parent_run(KfpContext(run_id="pg"), get_settings())
        train_run, model_id = _logged_model(mlflow, environment["MLFLOW_EXPERIMENT_NAME"])
        name = environment["KFP_MLFLOW_MODEL_NAME"]
        versions = [
            _register(mlflow, name, f"k{i}", train_run, model_id, {"rmse": 40.0 + i})[0].version
            for i in range(writers)
        ]
        counting = _CountingClient(mlflow)
        policy = Policy.for_task("regression")
        for round_ in range(max_rounds):
            if round_:
                mlflow.delete_registered_model_alias(name, CHAMPION)
            barrier = threading.Barrier(writers)
            with ThreadPoolExecutor(writers) as pool:
                futures = [
                    pool.submit(_promote_together, barrier, counting, name, v, policy)
                    for v in versions
                ]
                outcomes = [f.result() for f in futures]  # re-raises a writer's failure
            assert mlflow.get_model_version_by_alias(name, CHAMPION).version == versions[0]
            assert {o.champion_version for o in outcomes} == {versions[0]}
            assert outcomes[0].promoted is True
            if counting.conflicts:
                break
        assert counting.conflicts > 0, f"no alias write collided in {max_rounds} rounds"
