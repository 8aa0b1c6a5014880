"""Following runs to their end against the fake KFP API (its contract is KFP's own models)."""

from __future__ import annotations

import pytest

from kfp_mlflow.core.exceptions import PipelineRunError
from kfp_mlflow.remote import (
    Backoff,
    KfpAuthError,
    KfpUnreachableError,
    follow_run,
    submit_pipeline,
)
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.follow_scripts import FAILURE, SUCCESS

FAST = {"poll_interval": 0.01, "backoff": Backoff(initial=0.01, cap=0.05)}


@pytest.fixture
def run_id(fake_kfp, conn, settings, tiny_package) -> str:
    return submit_pipeline(conn, package=tiny_package, settings=settings).run_id


def test_wait_until_success(fake_kfp, conn, run_id) -> None:
    fake_kfp.run_script = SUCCESS
    seen = []
    status = follow_run(run_id, conn, on_update=seen.append, **FAST)
    assert status.succeeded
    assert [s.state for s in seen] == [s for s, _ in SUCCESS]
    assert [t.name for t in status.tasks] == ["preprocess", "train"]  # root DAG left out


def test_wait_until_failure_names_the_task(fake_kfp, conn, run_id) -> None:
    fake_kfp.run_script = FAILURE
    with pytest.raises(PipelineRunError, match=r"failed task\(s\): train \(train: exit status 1\)"):
        follow_run(run_id, conn, **FAST)
    status = follow_run(run_id, conn, raise_on_failure=False, **FAST)
    assert status.state == "FAILED"
    assert [t.name for t in status.failed_tasks] == ["train"]


def test_dropped_connection_during_wait(fake_kfp, conn, run_id) -> None:
    fake_kfp.run_script = SUCCESS
    retries = []
    seen = []
    session = conn.open()
    follow_run(run_id, session, on_update=seen.append, **FAST)  # consumes the script...
    fake_kfp._progress[run_id] = 0  # ...so start it again
    fake_kfp.drop_next(2)
    fake_kfp.fail_next(2, 503)
    status = follow_run(
        run_id, session, on_update=seen.append, on_retry=lambda e, d: retries.append(d), **FAST
    )
    assert status.succeeded
    assert len(retries) == 4
    assert retries == sorted(retries)  # backing off


def test_gives_up_after_a_long_silence(fake_kfp, conn, run_id) -> None:
    fake_kfp.run_script = [("RUNNING", {})]
    session = conn.open()
    with fake_kfp.down(), pytest.raises(KfpUnreachableError, match="goes on on the cluster"):
        follow_run(run_id, session, give_up_after=0.2, **FAST)


def test_auth_failure_is_not_retried(fake_kfp, conn, run_id) -> None:
    session = conn.open()
    fake_kfp.token = "now-required"
    retries = []
    with pytest.raises(KfpAuthError):
        follow_run(run_id, session, on_retry=lambda e, d: retries.append(d), **FAST)
    assert retries == []


def test_plugin_mlflow_link_is_surfaced(fake_kfp, conn, settings, tiny_package) -> None:
    from kfp_mlflow.core.settings import Settings

    plugin = Settings(kfp_host=fake_kfp.url, kfp_mlflow_plugin=True)
    run = submit_pipeline(conn, package=tiny_package, mlflow_experiment="e", settings=plugin)
    status = follow_run(run.run_id, conn, **FAST)
    assert status.mlflow_url
    assert run.run_id in status.mlflow_url
