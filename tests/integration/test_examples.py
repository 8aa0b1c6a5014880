"""The examples run end to end under kfp.local against a real MLflow server, read back."""

from __future__ import annotations

from pathlib import Path

from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.dsl.pipeline_loading import load_pipeline
from kfp_mlflow.local.runner import run_local
from tests.integration.conftest import client, tracked_environment

ROOT = Path(__file__).resolve().parents[2]


def _run(reference: str, mlflow_server: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        settings = get_settings()
        result = run_local(load_pipeline(str(ROOT / reference), settings), {}, settings)
        mlflow = client()
        experiment = mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"])
        runs = mlflow.search_runs([experiment.experiment_id], max_results=100)
    assert result.succeeded, result.error
    parents = [r for r in runs if r.data.tags["kfp_mlflow.role"] == "pipeline"]
    assert len(parents) == 1
    assert parents[0].info.status == "FINISHED"
    children = [r for r in runs if r.data.tags["kfp_mlflow.role"] == "task"]
    kfp_run_id = parents[0].data.tags["kfp.pipeline_run_id"]
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.data.tags["kfp.pipeline_run_id"] == kfp_run_id
        assert child.info.status == "FINISHED"
    return result, children, mlflow


def test_own_training_step_with_a_custom_metric(mlflow_server, tmp_path):
    result, children, mlflow = _run(
        "examples/own_training.py:own_training", mlflow_server, tmp_path
    )
    steps = sorted(c.data.tags["kfp_mlflow.step"] for c in children)
    assert steps == ["evaluate", "evaluate", "preprocess", "register", "train_knn", "train_knn"]
    trains = [c for c in children if c.data.tags["kfp_mlflow.step"] == "train_knn"]
    # The user's inputs were logged as params by the executor, with no code of theirs.
    assert sorted(c.data.params["neighbours"] for c in trains) == ["25", "5"]
    evaluations = [c for c in children if c.data.tags["kfp_mlflow.step"] == "evaluate"]
    assert all("mape" in c.data.metrics for c in evaluations)
    decision = result.decision
    assert decision.metric == "mape"
    assert decision.direction == "min"
    best = min(decision.candidates, key=lambda c: c["metrics"]["mape"])
    assert decision.winner == best["candidate"]
    champion = mlflow.get_model_version_by_alias("own-knn", "champion")
    assert champion.version == decision.registered_version
    assert champion.tags["kfp_mlflow.family"] == "knn"
    assert champion.tags["kfp_mlflow.param.n_neighbors"] in {"5", "25"}
    assert champion.tags["kfp_mlflow.primary_metric"] == "mape"


def test_a_user_step_between_ours(mlflow_server, tmp_path):
    result, children, mlflow = _run(
        "examples/feature_step.py:with_features", mlflow_server, tmp_path
    )
    feature = next(c for c in children if c.data.tags["kfp_mlflow.step"] == "add_bmi_bp")
    assert feature.data.metrics["features_added"] == 1
    record = next(t for t in result.tasks if t.step == "add_bmi_bp")
    assert "bmi_bp" in record.outputs["train_out"]["metadata"]["columns"]
    assert result.decision.promoted
    assert mlflow.get_model_version_by_alias("with-features", "champion").version == "1"


def test_a_step_given_the_wrong_artifact_names_the_field_and_producer(mlflow_server, tmp_path):
    """A user wires a plain file where a dataset split is expected: one line, exit 2."""
    source = tmp_path / "broken.py"
    source.write_text(
        "from kfp import dsl\n"
        "from kfp.dsl import Dataset, Output\n"
        "import kfp_mlflow\n\n"
        "@kfp_mlflow.component\n"
        "def raw(out: Output[Dataset]) -> None:\n"
        "    import pandas as pd\n"
        "    pd.DataFrame({'x': [1.0, 2.0]}).to_parquet(out.path)\n\n"
        "@dsl.pipeline(name='broken')\n"
        "def broken(candidates: list = [{'family': 'linear'}]) -> None:\n"
        "    data = raw()\n"
        "    with dsl.ParallelFor(candidates) as c:\n"
        "        kfp_mlflow.train(candidate=c, train_data=data.outputs['out'])\n"
    )
    with tracked_environment(mlflow_server, tmp_path / "work"):
        settings = get_settings()
        result = run_local(load_pipeline(f"{source}:broken", settings), {}, settings)
    assert not result.succeeded
    assert type(result.error).__name__ == "StepFailedError"
    assert result.error.exit_code == 2
    assert "carries no kfp_mlflow.dataset/v1 record (written by preprocess)" in str(result.error)
    assert "train: input 'train_data'" in str(result.error)
