"""Like-for-like promotion: @champion is re-scored on the challenger's test rows.

Real models (scikit-learn, logged to a real MLflow server), real ``mlflow.models.evaluate`` and
``validate_evaluation_results``. Every version's *own-split* score (its tags) is set to mislead,
so only a decision made on the same rows gets these right.
"""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.core.tag_schema import TAG_PARENT
from kfp_mlflow.registry.head_to_head import HeadToHead, HeldOutRows, challenge
from kfp_mlflow.registry.policy import Policy
from kfp_mlflow.registry.promotion import CHAMPION, promote, register_version, version_tags
from kfp_mlflow.tracking.runs import KfpContext, open_parent_run
from tests.integration.conftest import client, tracked_environment

POLICY = Policy.for_task("regression")


def _data(seed: int = 0, rows: int = 400):  # type: ignore[no-untyped-def]
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])
    target = 3 * features["a"] - 2 * features["b"] + features["c"] + rng.normal(0, 0.3, rows)
    return features, pd.Series(target, name="y")


def _model(quality: int, extra_column: bool = False):  # type: ignore[no-untyped-def]
    """quality 0 learns nothing; each step up sees one more informative feature."""
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import LinearRegression

    features, target = _data(seed=1)
    if extra_column:
        features = features.assign(legacy=1.0)
    if quality == 0:
        return DummyRegressor().fit(features, target), features
    used = features.copy()
    for column in ("a", "b", "c")[quality:]:
        used[column] = 0.0  # the model never sees this signal
    return LinearRegression().fit(used, target), features


def _version(mlflow, experiment_id, name, key, quality, claimed_rmse, extra_column=False):  # type: ignore[no-untyped-def]
    import mlflow as mlflow_module
    from mlflow.models import infer_signature

    from kfp_mlflow.tracking.runs import tracking_uri_env

    model, features = _model(quality, extra_column)
    run = mlflow.create_run(experiment_id, run_name=f"train-{key}")
    with tracking_uri_env(mlflow.tracking_uri), mlflow_module.start_run(run_id=run.info.run_id):
        info = mlflow_module.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(features, model.predict(features)),
            pip_requirements=["scikit-learn"],
        )
    version, _ = register_version(
        mlflow, name, registration_key=key, source=info.model_uri, run_id=run.info.run_id,
        model_id=info.model_id, description="",
        tags=version_tags({"rmse": claimed_rmse, "r2": 0.5}, POLICY, gate_passed=True),
    )  # fmt: skip
    return str(version.version)


def _rows() -> HeldOutRows:
    features, target = _data(seed=7, rows=300)
    return HeldOutRows(features, target, "regression", digest="rows-seed7")


def _experiment_id(mlflow) -> str:  # type: ignore[no-untyped-def]
    """The tests' experiment, opened as a pipeline's first task opens it."""
    parent = open_parent_run(KfpContext(run_id="setup"), get_settings())
    return str(mlflow.get_run(parent).info.experiment_id)


def _challenge(mlflow, name, version, policy=POLICY):  # type: ignore[no-untyped-def]
    parent = open_parent_run(KfpContext(run_id=f"register-{version}"), get_settings())
    experiment_id = mlflow.get_run(parent).info.experiment_id
    return challenge(
        mlflow, name, version, policy, _rows(), experiment_id=experiment_id, parent_run_id=parent
    ), parent


def test_the_champion_is_rescored_on_the_challengers_rows(tracked):
    mlflow = client()
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    experiment_id = _experiment_id(mlflow)
    # v1 learned nothing but scored 1.0 on its own (easy) split; v2 is good, scored 5.0 on its.
    weak = _version(mlflow, experiment_id, name, "weak", quality=0, claimed_rmse=1.0)
    assert promote(mlflow, name, weak, POLICY).promoted
    good = _version(mlflow, experiment_id, name, "good", quality=3, claimed_rmse=5.0)

    rival, register_run = _challenge(mlflow, name, good)
    outcome = promote(mlflow, name, good, POLICY, challenge=rival)

    assert outcome.promoted, outcome.reason
    assert mlflow.get_model_version_by_alias(name, CHAMPION).version == good
    record = HeadToHead.of(mlflow.get_model_version(name, good), weak)
    assert record is not None and record.verdict == "won"
    assert record.challenger is not None and record.champion is not None
    assert record.challenger < record.champion  # rmse on the same rows
    assert f"v{good} rmse={record.challenger:.6g} vs v{weak}" in outcome.reason
    # Both evaluations are MLflow runs under the register run, with MLflow's own metrics.
    runs = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.`{TAG_PARENT}` = '{register_run}'"
    )
    by_name = {run.info.run_name: run for run in runs}
    champion_run = by_name[f"head-to-head-champion-v{weak}"]
    challenger_run = by_name[f"head-to-head-challenger-v{good}"]
    assert {champion_run.info.status, challenger_run.info.status} == {"FINISHED"}
    assert champion_run.data.metrics["root_mean_squared_error"] == pytest.approx(record.champion)
    assert challenger_run.data.metrics["root_mean_squared_error"] == pytest.approx(
        record.challenger
    )


def test_a_challenger_that_only_looks_better_is_not_promoted(tracked):
    mlflow = client()
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    experiment_id = _experiment_id(mlflow)
    good = _version(mlflow, experiment_id, name, "good", quality=3, claimed_rmse=5.0)
    assert promote(mlflow, name, good, POLICY).promoted
    # Its own split made it look five times better than the champion; on the same rows it is not.
    weak = _version(mlflow, experiment_id, name, "weak", quality=1, claimed_rmse=1.0)
    rival, _ = _challenge(mlflow, name, weak)
    outcome = promote(mlflow, name, weak, POLICY, challenge=rival)

    assert not outcome.promoted
    assert outcome.champion_version == good
    assert "does not beat" in outcome.reason and "mlflow.evaluate" in outcome.reason
    record = HeadToHead.of(mlflow.get_model_version(name, weak), good)
    assert record is not None and record.verdict == "lost"
    # Lost once, out for good: a later promoter (no head-to-head of its own) does not pick it.
    assert promote(mlflow, name, weak, POLICY).champion_version == good


@pytest.mark.parametrize("on_schema_change", ["block", "promote"])
def test_a_schema_change_is_decided_by_the_declared_policy(tracked, on_schema_change):
    mlflow = client()
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    policy = Policy.for_task("regression", on_schema_change=on_schema_change)
    experiment_id = _experiment_id(mlflow)
    old = _version(mlflow, experiment_id, name, "old", 3, 5.0, extra_column=True)
    assert promote(mlflow, name, old, policy).promoted
    new = _version(mlflow, experiment_id, name, "new", quality=2, claimed_rmse=9.0)
    rival, _ = _challenge(mlflow, name, new, policy)
    outcome = promote(mlflow, name, new, policy, challenge=rival)

    record = HeadToHead.of(mlflow.get_model_version(name, new), old)
    assert record is not None and record.verdict == "incomparable"
    assert "legacy" in record.detail  # the column the new rows lack
    assert f"on_schema_change={on_schema_change}" in outcome.reason
    assert outcome.promoted is (on_schema_change == "promote")


def _racer(barrier, environment: dict[str, str], version: str, out: str) -> None:  # type: ignore[no-untyped-def]
    import os

    os.environ.update(environment)
    from kfp_mlflow.tracking.runs import tracking_client

    mlflow = tracking_client()
    name = environment["KFP_MLFLOW_MODEL_NAME"]
    rival, _ = _challenge(mlflow, name, version)
    barrier.wait()
    outcome = promote(mlflow, name, version, POLICY, challenge=rival)
    Path(out).write_text(json.dumps({"promoted": outcome.promoted, "reason": outcome.reason}))


# On PostgreSQL, the backend the manifests deploy (SQLite races are covered by test_promotion_race).
@pytest.mark.parametrize("backend_server", ["postgresql"], indirect=True)
def test_racing_promoters_converge_on_the_best_on_the_same_rows(backend_server, tmp_path):
    """Four register steps released together; their own-split scores rank them backwards.
    Each re-challenges whichever champion it finds, so the truly best ends as @champion."""
    with tracked_environment(backend_server, tmp_path / "work") as environment:
        mlflow = client()
        name = environment["KFP_MLFLOW_MODEL_NAME"]
        experiment_id = _experiment_id(mlflow)
        incumbent = _version(mlflow, experiment_id, name, "incumbent", 0, claimed_rmse=0.5)
        assert promote(mlflow, name, incumbent, POLICY).promoted
        # quality 3 is the best on any rows; its claimed rmse is the worst.
        racers = {
            quality: _version(
                mlflow, experiment_id, name, f"q{quality}", quality, 1.0 + 3 - quality
            )
            for quality in (1, 2, 3)
        }
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(len(racers))
        processes = [
            context.Process(
                target=_racer,
                args=(barrier, dict(environment), version, str(tmp_path / f"out-{quality}")),
            )
            for quality, version in racers.items()
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=300)
        assert [p.exitcode for p in processes] == [0] * len(processes)

        champion = mlflow.get_model_version_by_alias(name, CHAMPION)
        assert champion.version == racers[3]
        best = json.loads((tmp_path / "out-3").read_text())
        assert best["promoted"] is True, best["reason"]
        # Every loser was measured against a champion and lost, or was beaten later.
        for quality in (1, 2):
            records = HeadToHead.records(mlflow.get_model_version(name, racers[quality]))
            assert records, f"q{quality} never met a champion"


def test_a_champion_that_cannot_be_loaded_here_falls_back_and_says_so(tracked):
    """E.g. a champion of a family whose package the register step's image lacks: the decision
    falls back to own-split scores, with the reason, instead of failing the pipeline."""
    from tests.integration.test_promotion_race import _logged_model

    mlflow = client()
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    experiment_id = _experiment_id(mlflow)
    train_run, model_id = _logged_model(mlflow, tracked["MLFLOW_EXPERIMENT_NAME"])  # no files
    empty, _ = register_version(
        mlflow, name, registration_key="empty", source=f"models:/{model_id}", run_id=train_run,
        model_id=model_id, description="",
        tags=version_tags({"rmse": 50.0, "r2": 0.5}, POLICY, gate_passed=True),
    )  # fmt: skip
    assert promote(mlflow, name, str(empty.version), POLICY).promoted
    good = _version(mlflow, experiment_id, name, "good", quality=3, claimed_rmse=5.0)
    rival, _ = _challenge(mlflow, name, good)
    outcome = promote(mlflow, name, good, POLICY, challenge=rival)

    record = HeadToHead.of(mlflow.get_model_version(name, good), str(empty.version))
    assert record is not None and record.verdict == "unmeasured"
    assert "could not be scored here" in record.detail
    assert outcome.promoted, outcome.reason
    assert "could not be scored here" in outcome.reason


def test_a_custom_primary_metric_is_re_measured_on_the_same_rows(tracked):
    """medae, defined by its import path as the evaluation record carries it, re-measured by
    mlflow.evaluate for both versions: the values are sklearn's on exactly these rows."""
    from sklearn.metrics import median_absolute_error

    from kfp_mlflow.models.metrics import MetricSpec

    spec = MetricSpec.parse(
        {"name": "medae", "function": "sklearn.metrics:median_absolute_error", "direction": "min"}
    )
    policy = Policy.for_task("regression", "medae", custom={"medae": "min"})
    mlflow = client()
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    experiment_id = _experiment_id(mlflow)
    weak = _version(mlflow, experiment_id, name, "weak", quality=1, claimed_rmse=1.0)
    good = _version(mlflow, experiment_id, name, "good", quality=3, claimed_rmse=5.0)
    # Own-split medae claims that rank them backwards: only the same rows get this right.
    for version, claimed in ((weak, "0.1"), (good, "9.0")):
        mlflow.set_model_version_tag(name, version, "kfp_mlflow.metric.medae", claimed)
    assert promote(mlflow, name, weak, policy).promoted
    parent = open_parent_run(KfpContext(run_id="register-medae"), get_settings())
    rows = _rows()
    rival = challenge(
        mlflow, name, good, policy, rows, experiment_id=experiment_id, parent_run_id=parent,
        custom=spec,
    )  # fmt: skip
    outcome = promote(mlflow, name, good, policy, challenge=rival)

    record = HeadToHead.of(mlflow.get_model_version(name, good), weak)
    assert record is not None and record.verdict == "won" and record.metric == "medae"
    expected = {
        quality: median_absolute_error(rows.target, _model(quality)[0].predict(rows.features))
        for quality in (1, 3)
    }
    assert record.champion == pytest.approx(expected[1])
    assert record.challenger == pytest.approx(expected[3])
    assert record.rows == len(rows)
    assert outcome.promoted


def test_without_the_same_rows_the_version_tag_says_why(tracked):
    from kfp_mlflow.registry.head_to_head import not_like_for_like

    mlflow = client()
    name = tracked["KFP_MLFLOW_MODEL_NAME"]
    experiment_id = _experiment_id(mlflow)
    old = _version(mlflow, experiment_id, name, "old", quality=3, claimed_rmse=5.0)
    assert promote(mlflow, name, old, POLICY).promoted
    new = _version(mlflow, experiment_id, name, "new", quality=1, claimed_rmse=4.0)
    why = "'c''s evaluation records no test rows"
    outcome = promote(
        mlflow, name, new, POLICY, challenge=not_like_for_like(mlflow, name, new, POLICY, why)
    )
    record = HeadToHead.of(mlflow.get_model_version(name, new), old)
    assert record is not None and record.verdict == "unmeasured" and record.detail == why
    assert not record.like_for_like
    assert outcome.promoted  # own-split scores decided (4.0 < 5.0)...
    assert why in outcome.reason  # ...and the decision says why they were all there was
