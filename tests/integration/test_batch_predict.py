"""`kfp-mlflow predict`: batch scoring with @champion through the batch_predict pipeline, drift
against the training split, bad input named, and the `--watch` stream across a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from kfp_mlflow.core.exceptions import ConfigError, DataError
from kfp_mlflow.core.settings import get_settings
from kfp_mlflow.local.runner import run_local
from kfp_mlflow.local.streaming import WatchOptions, watch
from kfp_mlflow.serving.scoring import load_model, resolve_model, score
from tests.integration.conftest import client, tracked_environment

LINEAR = [{"name": "linear", "family": "linear", "params": {"alpha": 1.0}}]
ROWS = 600


def churn(seed: int, rows: int, tenure_shift: float = 0.0, first_id: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(rows) + first_id,
            "tenure": rng.uniform(0, 60, rows) + tenure_shift,
            "spend": rng.normal(50, 10, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows),
        }
    )
    z = -0.08 * frame["tenure"] + 0.05 * (frame["spend"] - 50) + (frame["plan"] == "basic") + 1
    frame["churned"] = np.where(rng.uniform(size=rows) < 1 / (1 + np.exp(-z)), "yes", "no")
    return frame


class Trained:
    def __init__(self, server: str, root: Path, names: dict[str, str]) -> None:
        self.server, self.root, self.names = server, root, names
        self.model_name = names["KFP_MLFLOW_MODEL_NAME"]

    def env(self) -> Iterator[dict[str, str]]:
        return tracked_environment(  # type: ignore[return-value]
            self.server,
            self.root / "work",
            KFP_MLFLOW_MODEL_NAME=self.model_name,
            MLFLOW_EXPERIMENT_NAME=self.names["MLFLOW_EXPERIMENT_NAME"],
        )

    def cli(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
            capture_output=True, text=True, env=self.subprocess_env(), cwd=cwd, timeout=600,
        )  # fmt: skip

    def subprocess_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_"))}
        return keep | self.names | {"KFP_MLFLOW_WORK_DIR": str(self.root / "work")}


@pytest.fixture(scope="module")
def trained(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A classifier registered as @champion v1, trained on a numeric + categorical churn set."""
    root = tmp_path_factory.mktemp("batch")
    source = root / "train.csv"
    churn(1, ROWS).to_csv(source, index=False)
    with tracked_environment(mlflow_server, root / "work") as names:
        result = run_local(
            None, {"data": str(source), "target": "churned", "candidates": LINEAR}, get_settings()
        )
        assert result.succeeded, result.error
        assert result.decision is not None
        assert result.decision.promoted
    return Trained(mlflow_server, root, dict(names))


def _scoring_runs(name: str, experiment: str, version: str = "1") -> list:  # type: ignore[type-arg]
    mlflow = client()
    experiment_id = mlflow.get_experiment_by_name(experiment).experiment_id
    return list(
        mlflow.search_runs(
            [experiment_id],
            filter_string=f"tags.`kfp_mlflow.scored_model` = 'models:/{name}/{version}' "
            "and tags.`kfp_mlflow.step` = 'batch_predict'",
            order_by=["attributes.start_time DESC"],
        )
    )


def test_batch_scores_with_the_champion_and_records_version_data_and_throughput(
    trained: Trained, tmp_path: Path
) -> None:
    data = tmp_path / "customers.parquet"
    scored_frame = churn(2, 3000, first_id=50_000)
    scored_frame.to_parquet(data, index=False)
    output = tmp_path / "out" / "predictions.parquet"
    result = trained.cli(
        "predict", "--data", str(data), "--id-column", "customer_id", "--output", str(output),
        "--chunk-rows", "1000", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"scored 3,000 rows with models:/{trained.model_name}/1 (@champion)" in result.stdout
    assert "ignored 1 column(s) the model does not use: churned" in result.stdout

    predictions = pd.read_parquet(output)
    assert list(predictions.columns) == [
        "customer_id", "prediction", "probability_no", "probability_yes",
    ]  # fmt: skip
    assert predictions["customer_id"].tolist() == scored_frame["customer_id"].tolist()
    np.testing.assert_allclose(predictions[["probability_no", "probability_yes"]].sum(axis=1), 1)
    with trained.env():
        registered = mlflow.pyfunc.load_model(f"models:/{trained.model_name}/1")
        expected = registered.predict(scored_frame[["tenure", "spend", "plan"]])
        assert predictions["prediction"].tolist() == list(expected)

        runs = _scoring_runs(trained.model_name, trained.names["MLFLOW_EXPERIMENT_NAME"])
        assert runs, "no batch_predict run tagged with the scored version"
        run = runs[0]
        from kfp_mlflow.data.datasets import digest

        assert run.data.tags["kfp_mlflow.dataset_digest"] == digest(scored_frame)
        assert run.data.tags["kfp_mlflow.scored_from"] == f"models:/{trained.model_name}@champion"
        assert run.data.tags["kfp_mlflow.scored_data"] == str(data)
        assert run.data.tags["kfp_mlflow.drift"] == "false"
        assert run.data.metrics["rows"] == 3000
        assert run.data.metrics["rows_per_second"] > 0
        assert run.data.metrics["drift.psi.tenure"] < 0.1
        artifacts = {a.path for a in client().list_artifacts(run.info.run_id, "drift")}
        assert artifacts == {"drift/drift.png", "drift/drift.html"}


def test_shifted_data_is_flagged_with_exit_10_after_the_predictions_are_written(
    trained: Trained, tmp_path: Path
) -> None:
    data = tmp_path / "later.csv"
    churn(3, 2000, tenure_shift=45.0).drop(columns=["churned"]).to_csv(data, index=False)
    output = tmp_path / "later-predictions.parquet"
    result = trained.cli("predict", "--data", str(data), "--output", str(output), cwd=tmp_path)
    assert result.returncode == 10, result.stdout + result.stderr
    assert "drift above 0.2 in: prediction, tenure" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    frame = pd.read_parquet(output)  # written before the drift verdict
    assert frame["row"].tolist() == list(range(2000))
    with trained.env():
        run = _scoring_runs(trained.model_name, trained.names["MLFLOW_EXPERIMENT_NAME"])[0]
        assert run.data.tags["kfp_mlflow.drift"] == "true"
        assert run.data.tags["kfp_mlflow.drifted"] == "prediction, tenure"
        assert run.data.metrics["drift.psi.tenure"] > 1.0
        assert run.data.metrics["drift.psi.spend"] < 0.1


def test_a_missing_column_fails_the_pipeline_with_one_line_naming_it(
    trained: Trained, tmp_path: Path
) -> None:
    data = tmp_path / "partial.parquet"
    churn(4, 50).drop(columns=["plan"]).to_parquet(data)
    result = trained.cli("predict", "--data", str(data), cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "lacks column(s) 'plan'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_input_is_named_one_problem_per_line(trained: Trained, tmp_path: Path) -> None:
    with trained.env():
        mlflow = client()
        with pytest.raises(ConfigError, match="no registered model named 'absent'"):
            resolve_model(mlflow, "absent")
        with pytest.raises(
            ConfigError, match=r"has no alias @staging \(its aliases: @champion→v1\)"
        ):
            resolve_model(mlflow, trained.model_name, alias="staging")
        with pytest.raises(ConfigError, match=r"has no version '42'.*latest version is 1"):
            resolve_model(mlflow, trained.model_name, version="42")
        resolved = resolve_model(mlflow, trained.model_name)
        assert (resolved.version, resolved.alias) == ("1", "champion")
        model = load_model(resolved.uri, get_settings().tracking_uri)
    assert [c.name for c in model.inputs] == ["tenure", "spend", "plan"]
    frame = churn(5, 20)

    def run(chunk: pd.DataFrame, keys: list[str] | None = None):  # type: ignore[no-untyped-def]
        return score(model, iter([chunk]), tmp_path / "p.parquet", source="x.csv", keys=keys)

    with pytest.raises(DataError, match=r"lacks column\(s\) 'tenure', 'plan' that models:/"):
        run(frame.drop(columns=["tenure", "plan"]))
    with pytest.raises(DataError, match=r"column 'spend' of x\.csv is .*expects double"):
        run(frame.assign(spend=frame["spend"].map(lambda v: f"{v:.1f} EUR")))
    with pytest.raises(DataError, match="no key column 'account'"):
        run(frame, keys=["account"])
    result = run(frame.assign(note="x"), keys=["customer_id"])
    assert result.check.ignored == ["churned", "note"]
    assert not (tmp_path / ".p.parquet.partial").exists()


def _ledger(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    path = directory / "_ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_watch_scores_each_file_once_across_a_kill_and_a_champion_move(
    trained: Trained, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = [f"batch-{letter}.parquet" for letter in "fedcba"]  # arrival order ≠ name order
    for index, name in enumerate(names):
        churn(10 + index, 500, first_id=index * 1000).to_parquet(inbox / name)
        os.utime(inbox / name, ns=(1_700_000_000 * 10**9 + index * 10**9,) * 2)
    (inbox / "_SUCCESS").write_text("")  # markers and partial uploads are not data
    (inbox / ".batch-g.parquet.tmp").write_text("half")

    clean_out = tmp_path / "clean"
    clean = trained.cli(
        "predict", "--watch", str(inbox), "--output", str(clean_out), "--until-idle",
        "--max-files-per-trigger", "4", "--id-column", "customer_id", cwd=tmp_path,
    )  # fmt: skip
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert [entry["input"] for entry in _ledger(clean_out)] == names

    killed_out = tmp_path / "killed"
    command = [
        sys.executable, "-c", "from kfp_mlflow.cli import main; main()",
        "predict", "--watch", str(inbox), "--output", str(killed_out),
        "--trigger-seconds", "1.5", "--id-column", "customer_id",
    ]  # fmt: skip
    stream = subprocess.Popen(
        command, env=trained.subprocess_env(), cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(_ledger(killed_out)) < 2 and time.monotonic() < deadline:
            assert stream.poll() is None, "the stream stopped by itself"
            time.sleep(0.1)
        stream.send_signal(signal.SIGKILL)
        stream.wait(timeout=30)
    finally:
        if stream.poll() is None:
            stream.kill()
    recorded = _ledger(killed_out)
    assert 2 <= len(recorded) < len(names), "killed too late to test a restart"
    with trained.env():
        watch_runs = client().search_runs(
            [client().get_experiment_by_name(get_settings().experiment_name).experiment_id],
            filter_string="tags.`kfp_mlflow.step` = 'predict-watch'",
        )
    killed_run = next(r for r in watch_runs if r.info.status == "RUNNING")  # SIGKILL: no cleanup
    # The two windows a kill can hit, made certain: the last predictions file was moved into
    # place but its ledger line never written, and a ledger line torn in the middle.
    lines = (killed_out / "_ledger.jsonl").read_text().splitlines(keepends=True)
    (killed_out / "_ledger.jsonl").write_text("".join(lines[:-1]) + lines[-1][:25])

    restarted = trained.cli(
        "predict", "--watch", str(inbox), "--output", str(killed_out), "--until-idle",
        "--id-column", "customer_id", cwd=tmp_path,
    )  # fmt: skip
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    with trained.env():
        closed = client().get_run(killed_run.info.run_id)
    # The restart closed the killed session's run, saying why.
    assert closed.info.status == "FAILED"
    assert "ended without closing its runs" in closed.data.tags["kfp_mlflow.error"]
    ledger = _ledger(killed_out)
    assert [entry["input"] for entry in ledger] == names  # each exactly once, in arrival order
    assert {entry["model_uri"] for entry in ledger} == {f"models:/{trained.model_name}/1"}
    for name in names:
        output = name.replace(".parquet", ".predictions.parquet")
        assert (killed_out / output).read_bytes() == (clean_out / output).read_bytes(), output
    assert sorted(p.name for p in killed_out.iterdir() if p.name.startswith(".")) == []

    # @champion moves while the stream runs: the next micro-batch uses the new version and
    # says so. In-process, so the move happens exactly between two micro-batches.
    for index, name in enumerate(("batch-y.parquet", "batch-z.parquet")):
        churn(30 + index, 200).to_parquet(inbox / name)
        os.utime(inbox / name, ns=(1_800_000_000 * 10**9 + index * 10**9,) * 2)
    said: list[str] = []
    with trained.env():
        mlflow = client()
        first = mlflow.get_model_version(trained.model_name, "1")

        def say(line: str) -> None:
            said.append(line)
            if line.startswith("scored batch-y"):
                second = mlflow.create_model_version(
                    trained.model_name,
                    first.source,
                    first.run_id,
                    model_id=first.source.removeprefix("models:/"),
                )
                mlflow.set_registered_model_alias(trained.model_name, "champion", second.version)

        try:
            options = WatchOptions(model_name=trained.model_name, until_idle=True)
            assert watch(inbox, killed_out, options, get_settings(), say=say) == 2
        finally:
            mlflow.set_registered_model_alias(trained.model_name, "champion", "1")
    moved = f"models:/{trained.model_name}@champion moved: v1 → v2; micro-batch 2 and later use v2"
    assert moved in said, said
    tail = _ledger(killed_out)[-2:]
    assert [(e["input"], e["model_uri"].rsplit("/", 1)[-1]) for e in tail] == [
        ("batch-y.parquet", "1"), ("batch-z.parquet", "2"),
    ]  # fmt: skip
