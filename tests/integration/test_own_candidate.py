"""The user path docs/extending.md walks, end to end: ``examples/one_candidate.py`` (own
validation step, own ExtraTrees step on a text column, one candidate, median absolute error as
the primary metric) run three times against one model name with ``kfp-mlflow run``.

Runs two and three must be decided like for like: @champion and the new version re-measured on
``medae`` by ``mlflow.models.evaluate`` on the same rows the candidate was scored on. Everything
is read back from MLflow (version tags, runs, the decision artifact), not from the log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from kfp_mlflow.core.tag_schema import (
    TAG_HEAD_TO_HEAD_PREFIX,
    TAG_PARENT,
    TAG_PARENT_RUN_ID,
    TAG_STEP,
    TAG_TEST_DIGEST,
    TAG_TEST_ROWS_URI,
)
from kfp_mlflow.registry.head_to_head import HeadToHead
from tests.integration.conftest import client, tracked_environment

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = f"{ROOT / 'examples' / 'one_candidate.py'}:one_candidate"
DATA = ROOT / "examples" / "data" / "diabetes_bmi_bands.csv"
# Per pipeline run (one takes ~40 s here): a hung run fails this test, its process group
# killed, instead of hanging the suite; pytest-timeout bounds the whole test as well.
DEADLINE_SECONDS = 300


def _run_pipeline(model_name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("kfp-mlflow")
    assert executable, "the console script is installed with the package"
    command = [
        executable, "run", "--pipeline", PIPELINE,
        "--arg", f"data={DATA}", "--arg", f"model_name={model_name}",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=cwd, env=dict(os.environ), text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the run and every task it started
        process.communicate()
        pytest.fail(f"a pipeline run did not finish within {DEADLINE_SECONDS}s")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _decision(mlflow, version) -> dict:  # type: ignore[no-untyped-def]
    """The decision the register step of the version's pipeline run logged."""
    parent = version.tags[TAG_PARENT_RUN_ID]
    experiment = mlflow.get_run(parent).info.experiment_id
    (register,) = mlflow.search_runs(
        [experiment],
        filter_string=f"tags.`{TAG_PARENT}` = '{parent}' and tags.`{TAG_STEP}` = 'register'",
    )
    path = mlflow.download_artifacts(register.info.run_id, "decision.json")
    return {"register_run": register, **json.loads(Path(path).read_text())}


@pytest.mark.timeout(3 * DEADLINE_SECONDS + 120)
def test_one_own_candidate_three_runs_decided_like_for_like_on_medae(mlflow_server, tmp_path):
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        name = names["KFP_MLFLOW_MODEL_NAME"]
        for attempt in range(3):
            done = _run_pipeline(name, tmp_path)
            assert done.returncode == 0, f"run {attempt + 1}: {done.stdout}{done.stderr}"
        mlflow = client()
        versions = {
            v.version: mlflow.get_model_version(name, v.version)
            for v in mlflow.search_model_versions(f"name = '{name}'")
        }
        assert sorted(versions, key=int) == ["1", "2", "3"]

        first = _decision(mlflow, versions["1"])
        assert first["metric"] == "medae" and first["direction"] == "min"
        assert first["promoted"] and first["head_to_head"] is None  # nothing to meet yet

        digests = set()
        for number in ("2", "3"):
            version = versions[number]
            decision = _decision(mlflow, version)
            assert decision["metric"] == "medae"
            records = HeadToHead.records(version)
            assert records, f"v{number} met no champion"
            (record,) = records.values()  # one pipeline run, one champion met
            assert record.like_for_like, record.detail
            assert record.metric == "medae"
            # The rows: those the candidate was scored on, as its evaluate run recorded them.
            assert record.data_digest == version.tags[TAG_TEST_DIGEST]
            assert record.rows_uri == version.tags[TAG_TEST_ROWS_URI]
            assert record.rows == 89  # the 20% test split of 442 rows
            digests.add(record.data_digest)
            # The new version re-measured by mlflow.evaluate agrees with its own evaluation.
            assert record.challenger == pytest.approx(
                float(version.tags["kfp_mlflow.metric.medae"])
            )
            assert decision["head_to_head"]["verdict"] == record.verdict
            assert decision["registered_version"] == number
            # Both sides are MLflow runs under the register run, scored on the same dataset.
            register_run = decision["register_run"]
            runs = {
                run.info.run_name: run
                for run in mlflow.search_runs(
                    [register_run.info.experiment_id],
                    filter_string=f"tags.`{TAG_PARENT}` = '{register_run.info.run_id}'",
                )
            }
            champion = runs[f"head-to-head-champion-v{record.against}"]
            challenger = runs[f"head-to-head-challenger-v{number}"]
            assert champion.data.metrics["medae"] == pytest.approx(record.champion)
            assert challenger.data.metrics["medae"] == pytest.approx(record.challenger)
            inputs = [
                {i.dataset.digest for i in mlflow.get_run(r.info.run_id).inputs.dataset_inputs}
                for r in (champion, challenger)
            ]
            assert inputs[0] and inputs[0] == inputs[1]
            promoted = decision["promoted"]
            assert promoted is (record.verdict == "won")
            assert [k for k in version.tags if k.startswith(TAG_HEAD_TO_HEAD_PREFIX)] == [
                record.tag
            ]
        # Same data, same seed: runs two and three met @champion on the very same rows.
        assert len(digests) == 1
