"""Recurring runs against the fake KFP API (its contract is KFP's own models)."""

from __future__ import annotations

import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.remote import (
    KfpNotFoundError,
    KfpRejectedError,
    create_schedule,
    delete_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    submit_pipeline,
)
from tests.fakes.fixtures import *  # noqa: F403


def test_schedule_lifecycle(fake_kfp, conn, settings, tiny_package) -> None:
    info = create_schedule(
        conn,
        name="nightly",
        cron="0 3 * * *",
        package=tiny_package,
        params=["n=4"],
        max_concurrency=2,
        settings=settings,
    )
    job = fake_kfp.recurring[info.schedule_id]
    assert (job.trigger.cron_schedule.cron, job.max_concurrency) == ("0 0 3 * * *", "2")
    assert job.no_catchup is True
    assert job.runtime_config.parameters == {"n": 4}
    assert info.enabled
    assert info.cron == "0 0 3 * * *"
    assert info.max_concurrency == 2

    session = conn.open()
    assert [s.name for s in list_schedules(session)] == ["nightly"]
    assert not pause_schedule("nightly", session).enabled
    assert fake_kfp.recurring[info.schedule_id].mode == "DISABLE"
    assert resume_schedule(info.schedule_id, session).enabled  # by id works too
    delete_schedule("nightly", session)
    assert list_schedules(session) == []
    with pytest.raises(KfpNotFoundError):
        pause_schedule("nightly", session)


def test_schedule_reuses_the_submitted_version(fake_kfp, conn, settings, tiny_package) -> None:
    run = submit_pipeline(conn, package=tiny_package, settings=settings)
    info = create_schedule(conn, name="n", cron="@daily", package=tiny_package, settings=settings)
    assert info.pipeline_version_id == run.pipeline_version_id
    assert len(fake_kfp.versions) == 1


def test_duplicate_name_is_refused(conn, settings, tiny_package) -> None:
    create_schedule(conn, name="dup", cron="0 3 * * *", package=tiny_package, settings=settings)
    with pytest.raises(KfpRejectedError, match="already exists"):
        create_schedule(conn, name="dup", cron="0 4 * * *", package=tiny_package, settings=settings)


def test_paused_at_creation_and_list_by_experiment(conn, settings, tiny_package) -> None:
    create_schedule(
        conn,
        name="a",
        cron="0 3 * * *",
        package=tiny_package,
        enabled=False,
        experiment="team",
        settings=settings,
    )
    (only,) = list_schedules(conn, experiment="team", settings=settings)
    assert not only.enabled
    with pytest.raises(KfpNotFoundError, match="no KFP experiment named 'ghost'"):
        list_schedules(conn, experiment="ghost", settings=settings)


@pytest.mark.parametrize("concurrency", [0, 11])
def test_max_concurrency_range(fake_kfp, conn, settings, tiny_package, concurrency) -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        create_schedule(
            conn,
            name="x",
            cron="0 3 * * *",
            package=tiny_package,
            max_concurrency=concurrency,
            settings=settings,
        )
    assert fake_kfp.calls == []
