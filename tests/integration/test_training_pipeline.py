"""The whole training pipeline under kfp.local against a real MLflow server, read back."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kfp_mlflow.core.contracts import EvaluationInfo
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import LocalRun, git_commit, run_local
from kfp_mlflow.steps.register import run_register
from kfp_mlflow.tracking.runs import KfpContext, task_run
from tests.integration.conftest import client, tracked_environment

CANDIDATES = {"linear", "random-forest", "gradient-boosting-shallow", "gradient-boosting"}


@pytest.fixture(scope="module")
def pipeline_run(mlflow_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("regression")
    with tracked_environment(mlflow_server, work) as names:
        result = run_local(None, {}, get_settings())
        yield result, names, client()


def _runs(mlflow, names):
    experiment = mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"])
    runs = mlflow.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("kfp_mlflow.role") == "pipeline"]
    children = [r for r in runs if r.data.tags.get("kfp_mlflow.role") == "task"]
    return parents, children


def test_run_succeeds_and_decides(pipeline_run):
    result, _, _ = pipeline_run
    assert result.succeeded, result.log_path.read_text()[-3000:]
    decision = result.decision
    assert {c["candidate"] for c in decision.candidates} == CANDIDATES
    best = min(decision.candidates, key=lambda c: c["metrics"]["rmse"])
    assert decision.winner == best["candidate"]
    assert decision.promoted is True
    assert decision.registered_version == decision.champion_version == "1"
    # Every task reported through its status record, not through kfp.local's log.
    assert [t.state for t in result.tasks] == ["SUCCEEDED"] * 11
    steps = sorted(t.step for t in result.tasks)
    assert steps == ["evaluate"] * 4 + ["finalize", "preprocess", "register"] + ["train"] * 4
    assert len(result.kfp_run_ids) == 1


def test_one_parent_and_one_child_per_task(pipeline_run):
    _, names, mlflow = pipeline_run
    parents, children = _runs(mlflow, names)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"  # ended by the exit handler
    assert parent.data.tags["kfp_mlflow.final_state"] == "SUCCEEDED"
    kfp_run_id = parent.data.tags["kfp.pipeline_run_id"]
    steps = sorted(c.data.tags["kfp_mlflow.step"] for c in children)
    assert steps == ["evaluate"] * 4 + ["preprocess", "register"] + ["train"] * 4
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["kfp.pipeline_run_id"] == kfp_run_id
        assert child.data.tags["kfp.task_name"] == child.data.tags["kfp_mlflow.step"]
        assert child.data.tags["kfp_mlflow.runner"] == "local"
        assert child.info.status == "FINISHED"
        assert child.info.end_time >= child.info.start_time
    # Each task's inputs are its params (logged by the executor, not by the step).
    preprocess = next(c for c in children if c.data.tags["kfp_mlflow.step"] == "preprocess")
    assert preprocess.data.params["test_size"] == "0.2"
    assert "kfp_run_id" not in preprocess.data.params
    assert parent.data.params["target"] == "disease_progression"
    assert parent.data.params["task"] == "regression"


def test_metrics_and_artifacts_per_candidate(pipeline_run):
    _, names, mlflow = pipeline_run
    _, children = _runs(mlflow, names)
    evaluations = {
        c.data.tags["kfp_mlflow.candidate"]: c
        for c in children
        if c.data.tags["kfp_mlflow.step"] == "evaluate"
    }
    assert set(evaluations) == CANDIDATES
    for run in evaluations.values():
        assert {"rmse", "mae", "r2"} <= set(run.data.metrics)
        assert run.data.metrics["rmse"] > 0
        files = {f.path for f in mlflow.list_artifacts(run.info.run_id, "evaluation")}
        assert files == {"evaluation/feature_importance.csv", "evaluation/predicted_vs_actual.png"}
    trains = [c for c in children if c.data.tags["kfp_mlflow.step"] == "train"]
    for run in trains:
        assert run.data.params["family"] in {"linear", "random_forest", "gradient_boosting"}
        assert run.data.params["seed"] == "42"
        assert run.data.tags["kfp_mlflow.model_id"].startswith("m-")


def test_dataset_input_and_digest(pipeline_run):
    _, names, mlflow = pipeline_run
    parents, children = _runs(mlflow, names)
    preprocess = next(c for c in children if c.data.tags["kfp_mlflow.step"] == "preprocess")
    inputs = preprocess.inputs.dataset_inputs
    assert len(inputs) == 1
    tags = {t.key: t.value for t in inputs[0].tags}
    assert tags["kfp_mlflow.digest"] == parents[0].data.tags["kfp_mlflow.dataset_digest"]
    assert len(tags["kfp_mlflow.digest"]) == 64
    assert "sklearn://diabetes" in inputs[0].dataset.source
    assert preprocess.data.metrics["rows"] == 442


def test_registered_version_carries_lineage(pipeline_run):
    result, names, mlflow = pipeline_run
    parents, children = _runs(mlflow, names)
    version = mlflow.get_model_version(names["KFP_MLFLOW_MODEL_NAME"], "1")
    winner_train = next(
        c
        for c in children
        if c.data.tags["kfp_mlflow.step"] == "train"
        and c.data.tags["kfp_mlflow.candidate"] == result.decision.winner
    )
    tags = version.tags
    assert version.run_id == winner_train.info.run_id
    assert tags["kfp.pipeline_run_id"] == parents[0].data.tags["kfp.pipeline_run_id"]
    assert tags["kfp_mlflow.parent_run_id"] == parents[0].info.run_id
    assert tags["kfp_mlflow.dataset_digest"] == parents[0].data.tags["kfp_mlflow.dataset_digest"]
    assert tags["kfp_mlflow.version.kfp-mlflow"] == "0.1.0"
    assert tags["kfp_mlflow.seed"] == "42"
    assert tags["kfp_mlflow.gate"] == "passed"
    assert float(tags["kfp_mlflow.metric.rmse"]) == pytest.approx(
        min(c["metrics"]["rmse"] for c in result.decision.candidates)
    )
    assert any(k.startswith("kfp_mlflow.param.") for k in tags)
    if git_commit(Path.cwd()):
        assert tags["mlflow.source.git.commit"]


def test_champion_loads_and_predicts(pipeline_run, monkeypatch):
    import mlflow.pyfunc

    result, names, _ = pipeline_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", names["MLFLOW_TRACKING_URI"])
    model = mlflow.pyfunc.load_model(f"models:/{names['KFP_MLFLOW_MODEL_NAME']}@champion")
    test_split = next(result.run_dir.glob("*/preprocess/test_data"))
    rows = pd.read_parquet(test_split).drop(columns=["disease_progression"]).head(10)
    predictions = model.predict(rows)
    assert len(predictions) == 10
    assert pd.Series(predictions).between(0, 500).all()


def test_rerunning_register_creates_no_second_version(pipeline_run, monkeypatch):
    result, names, mlflow = pipeline_run
    for name, value in names.items():  # the autouse fixture cleared them for this test
        monkeypatch.setenv(name, value)
    parents, _ = _runs(mlflow, names)
    before = mlflow.search_model_versions(f"name = '{names['KFP_MLFLOW_MODEL_NAME']}'")
    evaluations = [
        EvaluationInfo.from_metadata(output["metadata"], input_name="evaluations", consumer="test")
        for record in result.tasks
        if record.step == "evaluate"
        for output in [record.outputs["evaluation"]]
    ]
    kfp = KfpContext(run_id=parents[0].data.tags["kfp.pipeline_run_id"], task_name="register")
    with task_run(step="register", kfp=kfp) as run:
        again = run_register(
            run,
            evaluations=evaluations,
            model_name=names["KFP_MLFLOW_MODEL_NAME"],
            primary_metric="",
            thresholds=[],
            min_improvement=0.0,
            decision_path=str(result.run_dir / "again" / "decision"),
            summary_path=str(result.run_dir / "again" / "summary"),
        )
    after = mlflow.search_model_versions(f"name = '{names['KFP_MLFLOW_MODEL_NAME']}'")
    assert len(before) == len(after) == 1
    assert again.version == "1"
    assert again.decision.created is False


def test_kfp_ui_outputs_are_written(pipeline_run):
    result, _, _ = pipeline_run
    evaluation = json.loads(next(result.run_dir.glob("*/*/evaluate/evaluation")).read_text())
    assert evaluation["candidate"] in CANDIDATES
    assert evaluation["contract"] == "kfp_mlflow.evaluation/v1"
    for step, output, contract in (
        ("preprocess", "train_data", "kfp_mlflow.dataset/v1"),
        ("train", "model", "kfp_mlflow.model/v1"),
        ("register", "decision", "kfp_mlflow.decision/v1"),
    ):
        record = next(t for t in result.tasks if t.step == step)
        assert record.outputs[output]["metadata"]["contract"] == contract
    report = next(result.run_dir.glob("*/*/evaluate/report")).read_text()
    assert "MLflow training run: [" in report and "/#/experiments/" in report
    importance = pd.read_csv(next(result.run_dir.glob("*/*/evaluate/feature_importance")))
    assert set(importance["feature"]) == {
        "age",
        "sex",
        "bmi",
        "bp",
        "s1",
        "s2",
        "s3",
        "s4",
        "s5",
        "s6",
    }
    page = next(result.run_dir.glob("*/*/evaluate/plot")).read_text()
    assert page.startswith("<!doctype html>")
    assert "data:image/png;base64,iVBORw0KGgo" in page  # a real PNG signature, embedded
    summary = next(result.run_dir.glob("*/register/summary")).read_text()
    assert "**(winner)**" in summary and "@champion" in summary
    assert "MLflow pipeline run: [http://127.0.0.1:" in summary


def _classification_csv(path: Path, rows: int = 240) -> Path:
    import numpy as np

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 72, size=rows),
            "monthly_fee": rng.normal(50, 15, size=rows).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], size=rows),
            "paperless": rng.choice([True, False], size=rows),
        }
    )
    risk = (frame["plan"] == "basic") * 1.5 - frame["tenure_months"] / 30 + rng.normal(0, 0.5, rows)
    frame["churned"] = np.where(risk > -0.5, "yes", "no")
    frame.to_csv(path, index=False)
    return path


def test_classification_on_a_csv_with_categorical_columns(backend_server, tmp_path):
    data = _classification_csv(tmp_path / "churn.csv")
    with tracked_environment(backend_server, tmp_path / "work") as names:
        result: LocalRun = run_local(None, {"data": str(data), "target": "churned"}, get_settings())
        assert result.succeeded, result.log_path.read_text()[-3000:]
        decision = result.decision
        assert decision.metric == "roc_auc"
        for candidate in decision.candidates:
            assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(candidate["metrics"])
        assert decision.promoted
        executor_output = json.loads(
            next(result.run_dir.glob("*/*/evaluate/executor_output.json")).read_text()
        )
        matrix = executor_output["artifacts"]["classification_metrics"]["artifacts"][0]["metadata"]
        assert matrix["confusionMatrix"]["annotationSpecs"] in (
            [{"displayName": "no"}, {"displayName": "yes"}],
            [{"displayName": "yes"}, {"displayName": "no"}],
        )
        assert "confidenceMetrics" in matrix
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(f"models:/{names['KFP_MLFLOW_MODEL_NAME']}@champion")
        sample = pd.read_csv(data).drop(columns=["churned"]).head(5)
        assert set(model.predict(sample)) <= {"yes", "no"}
