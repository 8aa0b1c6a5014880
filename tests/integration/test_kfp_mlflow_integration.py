"""With KFP's own MLflow integration on (MLFLOW_RUN_ID injected), steps log into that run."""

from __future__ import annotations

from types import SimpleNamespace

from kfp_mlflow.data.datasets import read_dataset
from kfp_mlflow.steps.preprocess import run_preprocess
from kfp_mlflow.steps.train import run_train
from kfp_mlflow.tracking.runs import KfpContext, task_run
from tests.integration.conftest import client, tracked_environment


def test_steps_log_into_the_injected_run_and_create_none(mlflow_server, tmp_path):
    with tracked_environment(mlflow_server, tmp_path) as names:
        mlflow = client()
        experiment_id = mlflow.create_experiment(names["MLFLOW_EXPERIMENT_NAME"])
        # What KFP's integration creates: a run per pipeline run and a nested run per task.
        kfp_parent = mlflow.create_run(experiment_id, run_name="kfp-run")
        kfp_tasks = {
            step: mlflow.create_run(
                experiment_id, tags={"mlflow.parentRunId": kfp_parent.info.run_id}, run_name=step
            )
            for step in ("preprocess", "train")
        }
        results = {}
        for step, kfp_task in kfp_tasks.items():
            with tracked_environment(
                mlflow_server,
                tmp_path,
                MLFLOW_EXPERIMENT_NAME=names["MLFLOW_EXPERIMENT_NAME"],
                MLFLOW_RUN_ID=kfp_task.info.run_id,
                MLFLOW_EXPERIMENT_ID=experiment_id,
            ):
                kfp = KfpContext(run_id="kfp-123", task_name=step)
                with task_run(step=step, kfp=kfp) as run:
                    results[step] = run
                    if step == "preprocess":
                        split = run_preprocess(
                            run, data="sklearn://diabetes", target="disease_progression",
                            task="", seed=3, test_size=0.2, min_rows=30,
                            train_path=str(tmp_path / "train"), test_path=str(tmp_path / "test"),
                        )  # fmt: skip
                    else:
                        run_train(
                            run,
                            candidate={"name": "linear", "family": "linear", "params": {"alpha": 1}},
                            dataset=split.train, train_path=str(tmp_path / "train"),
                            model=SimpleNamespace(path=str(tmp_path / "model"), metadata={}),
                        )  # fmt: skip

        runs = mlflow.search_runs([experiment_id])
        assert {r.info.run_id for r in runs} == {kfp_parent.info.run_id} | {
            r.info.run_id for r in kfp_tasks.values()
        }, "no competing hierarchy"
        assert results["preprocess"].parent_run_id == kfp_parent.info.run_id
        assert results["train"].run_id == kfp_tasks["train"].info.run_id
        assert results["train"].parent_run_id == kfp_parent.info.run_id
        preprocess = mlflow.get_run(kfp_tasks["preprocess"].info.run_id)
        assert preprocess.data.metrics["rows"] == len(read_dataset("sklearn://diabetes"))
        assert preprocess.data.tags["kfp_mlflow.step"] == "preprocess"
        train = mlflow.get_run(kfp_tasks["train"].info.run_id)
        assert train.data.params["family"] == "linear"
        # KFP ends the runs it made: the steps leave their status alone.
        assert {r.info.status for r in mlflow.search_runs([experiment_id])} == {"RUNNING"}
        for run in (kfp_parent, *kfp_tasks.values()):
            mlflow.set_terminated(run.info.run_id)
