"""Reading the input dataset over the S3 protocol from a real SeaweedFS server."""

from __future__ import annotations

import io

import pytest

from kfp_mlflow.core.exceptions import DataError
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.data.datasets import digest, read_dataset
from kfp_mlflow.steps.preprocess import run_preprocess
from kfp_mlflow.tracking.runs import KfpContext, task_run
from tests.integration.conftest import client, tracked_environment
from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, start_seaweedfs


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory):
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    diabetes = read_dataset("sklearn://diabetes")
    s3 = server.client()
    s3.make_bucket("datasets")
    for key, payload in (
        ("diabetes.csv", diabetes.to_csv(index=False).encode()),
        ("tables/diabetes.parquet", diabetes.to_parquet(index=False)),
    ):
        s3.put_object("datasets", key, io.BytesIO(payload), len(payload))
    yield server, diabetes
    server.stop()


@pytest.fixture
def s3_env(seaweedfs, monkeypatch):
    server, _ = seaweedfs
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "uri", ["s3://datasets/diabetes.csv", "minio://datasets/tables/diabetes.parquet"]
)
def test_reads_csv_and_parquet_over_s3(uri, seaweedfs, s3_env):
    _, diabetes = seaweedfs
    frame = read_dataset(uri)
    assert frame.shape == diabetes.shape
    assert digest(frame.astype(diabetes.dtypes.to_dict())) == digest(diabetes)


def test_missing_object_names_the_uri(s3_env):
    with pytest.raises(DataError, match=r"cannot read s3://datasets/nope.csv: NoSuchKey"):
        read_dataset("s3://datasets/nope.csv")


def test_wrong_credentials_are_reported(seaweedfs, monkeypatch):
    server, _ = seaweedfs
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    get_settings.cache_clear()
    with pytest.raises(DataError, match=r"cannot read s3://datasets/diabetes.csv: AccessDenied"):
        read_dataset("s3://datasets/diabetes.csv")


def test_preprocess_step_reads_s3_and_records_the_source(seaweedfs, mlflow_server, tmp_path):
    server, _ = seaweedfs
    with tracked_environment(
        mlflow_server,
        tmp_path,
        MLFLOW_S3_ENDPOINT_URL=server.endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
    ) as names:
        with task_run(step="preprocess", kfp=KfpContext(run_id="s3-run")) as run:
            result = run_preprocess(
                run, data="s3://datasets/diabetes.csv", target="disease_progression", task="",
                seed=1, test_size=0.25, min_rows=30, train_path=str(tmp_path / "train"),
                test_path=str(tmp_path / "test"),
            )  # fmt: skip
        assert result.train.task == "regression"
        assert result.train.rows + result.test.rows == 442
        mlflow = client()
        runs = mlflow.search_runs(
            [mlflow.get_experiment_by_name(names["MLFLOW_EXPERIMENT_NAME"]).experiment_id],
            filter_string="tags.`kfp_mlflow.step` = 'preprocess'",
        )
        dataset = runs[0].inputs.dataset_inputs[0].dataset
        assert "s3://datasets/diabetes.csv" in dataset.source
