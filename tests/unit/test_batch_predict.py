"""The batch_predict pipeline compiles to strict IR (golden file); the streaming ledger and the
drift measure behave as documented, without a server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kfp_mlflow.core.settings import Settings
from kfp_mlflow.data.drift import DriftMonitor, Reference, psi
from kfp_mlflow.dsl.compiling import compile_pipeline
from kfp_mlflow.local.streaming import Ledger, LedgerEntry, output_for, pending
from tests.support.golden import same_ir

GOLDEN = Path(__file__).resolve().parents[2] / "pipelines" / "compiled" / "batch_predict.yaml"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> str:
    from kfp_mlflow.pipelines.batch_predict import build_batch_predict_pipeline

    path = tmp_path_factory.mktemp("c") / "batch_predict.yaml"
    return compile_pipeline(path, Settings(), build_batch_predict_pipeline(Settings())).read_text()


def test_compiles_to_strict_ir_resolving_once_then_scoring(compiled: str) -> None:
    spec = json_format.ParseDict(
        next(yaml.safe_load_all(compiled)), pipeline_spec_pb2.PipelineSpec()
    )
    assert spec.pipeline_info.name == "kfp-mlflow-batch-predict"
    document = next(yaml.safe_load_all(compiled))
    executors = {name.removeprefix("exec-") for name in document["deploymentSpec"]["executors"]}
    assert executors == {"resolve-model", "batch-predict", "finalize"}
    inner = document["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    version = inner["batch-predict"]["inputs"]["parameters"]["version"]
    assert version["taskOutputParameter"]["producerTask"] == "resolve-model"
    outputs = document["components"]["comp-batch-predict"]["outputDefinitions"]["artifacts"]
    assert outputs["predictions"]["artifactType"]["schemaTitle"] == "system.Dataset"
    assert outputs["drift_report"]["artifactType"]["schemaTitle"] == "system.HTML"
    for forbidden in ("http://", "127.0.0.1", "/tmp/", "/work/"):
        assert forbidden not in compiled, forbidden


def test_golden_file_is_current(compiled: str) -> None:
    if os.environ.get("KFP_MLFLOW_UPDATE_GOLDEN"):
        GOLDEN.write_text(compiled)
    assert GOLDEN.is_file(), "run `make golden` to write the compiled pipeline"
    assert same_ir(GOLDEN.read_text(), compiled), "stale golden file: run `make golden`"


def _entry(name: str) -> LedgerEntry:
    return LedgerEntry(input=name, size=1, mtime_ns=1, status="scored", output=f"{name}.out")


def test_ledger_survives_a_torn_last_line_and_rewrites_itself(tmp_path: Path) -> None:
    path = tmp_path / "_ledger.jsonl"
    ledger = Ledger(path)
    ledger.append(_entry("a.parquet"))
    ledger.append(_entry("b.parquet"))
    with path.open("a") as handle:
        handle.write('{"input": "c.parquet", "si')  # the crash hit mid-line
    reopened = Ledger(path)
    assert list(reopened.entries) == ["a.parquet", "b.parquet"]
    assert "c.parquet" not in reopened
    assert [json.loads(line)["input"] for line in path.read_text().splitlines()] == [
        "a.parquet", "b.parquet",
    ]  # fmt: skip
    reopened.append(_entry("c.parquet"))
    assert list(Ledger(path).entries) == ["a.parquet", "b.parquet", "c.parquet"]


def test_pending_is_arrival_order_and_skips_markers_and_what_is_recorded(tmp_path: Path) -> None:
    for index, name in enumerate(["z.csv", "a.parquet", "m.parquet", "b.csv.gz"]):
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, ns=(10**18 + index * 10**9,) * 2)
    os.utime(tmp_path / "b.csv.gz", ns=(10**18 + 10**9,) * 2)  # same time as a: name decides
    for ignored in ("_SUCCESS", ".part.parquet", "notes.txt"):
        (tmp_path / ignored).write_text("x")
    (tmp_path / "_predictions").mkdir()
    ledger = Ledger(tmp_path / "_predictions" / "_ledger.jsonl")
    ledger.append(_entry("m.parquet"))
    assert [p.name for p in pending(tmp_path, ledger)] == ["z.csv", "a.parquet", "b.csv.gz"]
    assert output_for(tmp_path, tmp_path / "b.csv.gz").name == "b.predictions.parquet"


def _frame(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, rows) + shift,
            "city": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]),
        }
    )


def test_psi_is_near_zero_on_the_same_distribution_and_large_on_a_shift() -> None:
    rng = np.random.default_rng(0)
    train = _frame(rng, 5000)
    reference = Reference.build(train, train["x"].to_numpy() * 2, source="train")
    same, shifted = DriftMonitor(reference), DriftMonitor(reference)
    for _ in range(4):  # chunk by chunk, as scoring feeds it
        chunk = _frame(rng, 1000)
        same.observe(chunk, chunk["x"].to_numpy() * 2)
        moved = _frame(rng, 1000, shift=1.5).assign(city=rng.choice(["a", "d"], 1000))
        shifted.observe(moved, moved["x"].to_numpy() * 2)
    calm, drifted = same.report(0.2), shifted.report(0.2)
    assert calm.max_psi < 0.05
    assert not calm.detected
    assert calm.unseen["city"] == 0.0
    assert drifted.drifted == ["city", "prediction", "x"]
    assert drifted.psi["x"] > 1.0
    assert 0.4 < drifted.unseen["city"] < 0.6  # "d" never appeared in training
    assert psi([0.5, 0.5, 0.0], np.array([50.0, 50.0, 0.0])) == pytest.approx(0.0)
