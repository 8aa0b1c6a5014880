"""One MLflow parent run per pipeline run, also when the first tasks start together (real server).

Found by the fault tests: two first tasks that each created a parent could each keep their own
(MLflow has no unique constraint on tags, and "oldest" is a client-side start time).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.core.tag_schema import ROLE_PIPELINE, TAG_KFP_RUN_ID, TAG_PARENT, TAG_ROLE
from kfp_mlflow.tracking.runs import KfpContext, close_parent_run, find_parent_runs, open_parent_run
from tests.integration.conftest import client


def test_first_tasks_started_together_agree_on_one_parent(tracked):
    barrier = threading.Barrier(4)

    def first_task(_: int) -> str:
        barrier.wait()
        return open_parent_run(KfpContext(run_id="together"), get_settings())

    with ThreadPoolExecutor(4) as pool:
        parents = set(pool.map(first_task, range(4)))
    mlflow = client()
    experiment = mlflow.get_experiment_by_name(tracked["MLFLOW_EXPERIMENT_NAME"])
    active = find_parent_runs(mlflow, experiment.experiment_id, "together")
    assert len(parents) == 1
    assert [run.info.run_id for run in active] == list(parents)


def test_closing_merges_a_duplicate_parent_and_its_children(tracked):
    mlflow = client()
    experiment_id = mlflow.create_experiment(tracked["MLFLOW_EXPERIMENT_NAME"])
    tags = {TAG_KFP_RUN_ID: "dup", TAG_ROLE: ROLE_PIPELINE}
    older = mlflow.create_run(experiment_id, tags=tags, start_time=1_000).info.run_id
    newer = mlflow.create_run(experiment_id, tags=tags, start_time=2_000).info.run_id
    children = [
        mlflow.create_run(experiment_id, tags={TAG_PARENT: parent, TAG_KFP_RUN_ID: "dup"})
        for parent in (older, newer)
    ]
    for child in children:
        mlflow.set_terminated(child.info.run_id, "FINISHED")

    assert close_parent_run("dup", "SUCCEEDED", settings=get_settings()) == older

    assert [r.info.run_id for r in find_parent_runs(mlflow, experiment_id, "dup")] == [older]
    assert mlflow.get_run(older).info.status == "FINISHED"
    assert mlflow.get_run(newer).info.lifecycle_stage == "deleted"
    for child in children:
        assert mlflow.get_run(child.info.run_id).data.tags[TAG_PARENT] == older
