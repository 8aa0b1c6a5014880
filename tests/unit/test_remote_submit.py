"""Submitting runs against the in-process fake KFP API (tests/fakes/kfp_api.py).

The contract under test is KFP's own: the fake validates every request against the
``kfp_server_api`` models KFP publishes and answers with those models' JSON.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.core.settings import Settings
from kfp_mlflow.remote import (
    KfpAuthError,
    KfpConnection,
    KfpRejectedError,
    KfpUnreachableError,
    submit_pipeline,
)
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.kfp_api import FakeKfpApi


def uploads(fake: FakeKfpApi) -> int:
    return sum(1 for method, path in fake.calls if "upload" in path and method == "POST")


def test_first_submission(fake_kfp, conn, settings, tiny_package: Path) -> None:
    result = submit_pipeline(
        conn, package=tiny_package, params=["n=3", "flag=true"], settings=settings
    )
    run = fake_kfp.runs[result.run_id]
    assert result.version_created
    assert result.run_url == f"{fake_kfp.url}/#/runs/details/{result.run_id}"
    assert run.runtime_config.parameters == {"n": 3, "flag": True}
    assert run.pipeline_version_reference.pipeline_version_id == result.pipeline_version_id
    assert fake_kfp.experiments[run.experiment_id].display_name == "kfp-mlflow"
    version = fake_kfp.versions[result.pipeline_version_id]
    assert version.name == result.version_name
    assert result.version_name.startswith("0.1.0-")
    assert run.plugins_input is None
    assert uploads(fake_kfp) == 1


def test_resubmission_reuses_the_version(fake_kfp, conn, settings, tiny_package) -> None:
    first = submit_pipeline(conn, package=tiny_package, settings=settings)
    second = submit_pipeline(conn, package=tiny_package, experiment="other", settings=settings)
    assert not second.version_created
    assert second.pipeline_version_id == first.pipeline_version_id
    assert second.run_id != first.run_id
    assert uploads(fake_kfp) == 1
    assert len(fake_kfp.pipelines) == 1
    assert len(fake_kfp.experiments) == 2


def test_changed_spec_uploads_a_new_version(
    fake_kfp, conn, settings, tiny_package, changed_package
) -> None:
    first = submit_pipeline(conn, package=tiny_package, settings=settings)
    second = submit_pipeline(conn, package=changed_package, settings=settings)
    assert second.version_created
    assert second.pipeline_id == first.pipeline_id
    assert second.version_name != first.version_name
    assert len(fake_kfp.versions) == 2


def test_mlflow_experiment_as_parameter(fake_kfp, conn, tiny_package) -> None:
    fake_kfp.mlflow_experiments["churn"] = "12"
    settings = Settings(
        kfp_host=fake_kfp.url, mlflow_ui_url=fake_kfp.url, tracking_uri=fake_kfp.url
    )
    result = submit_pipeline(
        conn, package=tiny_package, mlflow_experiment="churn", settings=settings
    )
    run = fake_kfp.runs[result.run_id]
    assert run.runtime_config.parameters == {"experiment_name": "churn"}
    assert run.plugins_input is None
    assert f"{fake_kfp.url}/#/experiments/12" in run.description
    assert result.mlflow_url
    assert result.run_id in result.mlflow_url


def test_mlflow_experiment_through_kfp_plugin(fake_kfp, conn, tiny_package) -> None:
    settings = Settings(kfp_host=fake_kfp.url, kfp_mlflow_plugin=True)
    result = submit_pipeline(
        conn, package=tiny_package, mlflow_experiment="churn", settings=settings
    )
    run = fake_kfp.runs[result.run_id]
    assert run.plugins_input == {"mlflow": {"experiment_name": "churn"}}
    assert run.runtime_config.parameters == {"experiment_name": "churn"}


def test_unknown_param_fails_before_any_call(fake_kfp, conn, settings, tiny_package) -> None:
    with pytest.raises(ConfigError, match="nope"):
        submit_pipeline(conn, package=tiny_package, params=["nope=1"], settings=settings)
    assert fake_kfp.calls == []


def test_fake_rejects_what_kfp_rejects(fake_kfp) -> None:
    """The fake's contract: the kfp_server_api models (unknown field, bad enum → 400)."""
    from tests.fakes.kfp_api import HttpError

    headers = {"Content-Type": "application/json"}
    for body in (
        {"display_name": "e", "colour": "red"},
        {"display_name": "e", "storage_state": "SHINY"},
    ):
        with pytest.raises(HttpError) as info:
            fake_kfp.handle("POST", "/apis/v2beta1/experiments", headers, json.dumps(body).encode())
        assert info.value.status == 400


def test_401_is_one_clear_line(tiny_package, settings) -> None:
    with FakeKfpApi(token="right") as fake:
        wrong = KfpConnection.from_settings(settings, host=fake.url, token="wrong")
        with pytest.raises(KfpAuthError, match="401") as info:
            submit_pipeline(wrong, package=tiny_package, settings=settings)
        assert "\n" not in str(info.value)
        assert "wrong" not in str(info.value)
        right = KfpConnection.from_settings(settings, host=fake.url, token="right")
        assert submit_pipeline(right, package=tiny_package, settings=settings).run_id


def test_token_file_is_read_per_request(tiny_package, settings, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("right\n")
    with FakeKfpApi(token="right") as fake:
        conn = KfpConnection.from_settings(settings, host=fake.url, token_file=token_file)
        session = conn.open()
        submit_pipeline(session, package=tiny_package, settings=settings)
        fake.token = "rotated"
        token_file.write_text("rotated")
        submit_pipeline(session, package=tiny_package, settings=settings)


def test_unreachable_host_fails_fast(tiny_package) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        settings = Settings(kfp_host=f"http://127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(KfpUnreachableError, match="no KFP API answers") as info:
            submit_pipeline(package=tiny_package, settings=settings)
    assert time.monotonic() - started < 5
    assert "\n" not in str(info.value)


def test_server_rejection_is_reported(fake_kfp, conn, settings, tiny_package) -> None:
    from kfp_mlflow.remote.submit import EXPERIMENT_PARAMETER

    fake_kfp.run_script = []
    submit_pipeline(conn, package=tiny_package, settings=settings)
    (version_id,) = fake_kfp.versions
    del fake_kfp.specs[version_id]["root"]["inputDefinitions"]["parameters"][EXPERIMENT_PARAMETER]
    with pytest.raises(KfpRejectedError, match="unrecognized input parameters"):
        submit_pipeline(conn, package=tiny_package, params=["experiment_name=x"], settings=settings)
