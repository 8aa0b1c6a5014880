"""A version whose register step died between registering and deciding is marked, not promoted."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from kfp_mlflow.core.settings import Settings
from kfp_mlflow.core.tag_schema import (
    ROLE_PIPELINE,
    TAG_DECISION_STATE,
    TAG_KFP_RUN_ID,
    TAG_ROLE,
)
from kfp_mlflow.tracking.runs import close_parent_run


@pytest.mark.timeout(120)
def test_a_dead_runs_pending_version_is_marked_interrupted(mlflow_server):
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("undecided")
    client.create_run(experiment, tags={TAG_KFP_RUN_ID: "dead-run", TAG_ROLE: ROLE_PIPELINE})
    client.create_registered_model("undecided-model")
    source = client.create_run(experiment, tags={TAG_KFP_RUN_ID: "dead-run"})
    pending = client.create_model_version(
        "undecided-model",
        source=f"runs:/{source.info.run_id}/model",
        run_id=source.info.run_id,
        tags={TAG_KFP_RUN_ID: "dead-run", TAG_DECISION_STATE: "pending"},
    )
    other = client.create_model_version(
        "undecided-model",
        source=f"runs:/{source.info.run_id}/model",
        run_id=source.info.run_id,
        tags={TAG_KFP_RUN_ID: "live-run", TAG_DECISION_STATE: "pending"},
    )
    settings = Settings(MLFLOW_TRACKING_URI=mlflow_server, MLFLOW_EXPERIMENT_NAME="undecided")
    close_parent_run("dead-run", "FAILED", settings=settings)
    state = client.get_model_version("undecided-model", pending.version).tags[TAG_DECISION_STATE]
    assert state == "interrupted"
    # Another pipeline run's version, still deciding, is left alone.
    untouched = client.get_model_version("undecided-model", other.version)
    assert untouched.tags[TAG_DECISION_STATE] == "pending"
