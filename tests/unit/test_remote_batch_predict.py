"""The batch_predict pipeline submitted and scheduled like training, against the fake KFP API
(no KFP server can run here; the fake validates every request with the kfp_server_api models)."""

from __future__ import annotations

import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.pipelines.batch_predict import build_batch_predict_pipeline
from kfp_mlflow.remote import create_schedule, submit_pipeline
from tests.fakes.fixtures import *  # noqa: F403

REFERENCE = "kfp_mlflow.pipelines.batch_predict:build_batch_predict_pipeline"
PARAMS = ["model_name=churn", "data=s3://scores/in/2026-11-24.parquet", 'id_columns=["id"]']


def test_submitted_with_its_parameters_and_the_champion_by_default(
    fake_kfp, conn, settings
) -> None:
    result = submit_pipeline(
        conn, pipeline=build_batch_predict_pipeline(settings), params=PARAMS, settings=settings
    )
    run = fake_kfp.runs[result.run_id]
    assert run.runtime_config.parameters == {
        "model_name": "churn",
        "data": "s3://scores/in/2026-11-24.parquet",
        "id_columns": ["id"],
    }
    version = fake_kfp.versions[result.pipeline_version_id]
    assert fake_kfp.pipelines[version.pipeline_id].display_name == "kfp-mlflow-batch-predict"
    # Not given: the compiled defaults apply on the cluster — @champion, resolved once.
    spec = version.pipeline_spec
    defaults = {
        name: value.get("defaultValue")
        for name, value in spec["root"]["inputDefinitions"]["parameters"].items()
    }
    assert defaults["alias"] == "champion" and defaults["version"] == ""


def test_scheduled_nightly_reusing_the_uploaded_version(fake_kfp, conn, settings) -> None:
    first = submit_pipeline(
        conn, pipeline=build_batch_predict_pipeline(settings), params=PARAMS, settings=settings
    )
    # By reference, as `kfp-mlflow schedule create --pipeline ...` passes it.
    info = create_schedule(
        conn, name="churn-scores", cron="0 2 * * *", pipeline=REFERENCE, params=PARAMS,
        settings=settings,
    )  # fmt: skip
    job = fake_kfp.recurring[info.schedule_id]
    assert job.trigger.cron_schedule.cron == "0 0 2 * * *"
    assert job.runtime_config.parameters["model_name"] == "churn"
    assert info.pipeline_version_id == first.pipeline_version_id
    assert len(fake_kfp.versions) == 1


def test_a_misspelt_parameter_is_refused_before_the_cluster_is_touched(
    fake_kfp, conn, settings
) -> None:
    with pytest.raises(ConfigError, match="versoin"):
        submit_pipeline(
            conn, pipeline=build_batch_predict_pipeline(settings), params=["versoin=3"],
            settings=settings,
        )  # fmt: skip
    assert fake_kfp.calls == []
