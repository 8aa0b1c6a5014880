"""The README's loop: `kfp-mlflow run`, again and again, in a fresh directory, against the local
MLflow server it starts itself. Each run has a deadline (a hang fails here, not in CI's limit)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from mlflow import MlflowClient


@pytest.fixture
def cli_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}


def _kfp_mlflow(*args: str, env, cwd) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("kfp-mlflow")
    assert executable, "the console script is installed with the package"
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=RUN_DEADLINE_S,
    )  # fmt: skip


RUN_DEADLINE_S = 240


@pytest.mark.timeout(4 * RUN_DEADLINE_S)
def test_the_readme_loop_decides_like_for_like_every_time(cli_env, tmp_path):
    try:
        first = _kfp_mlflow("run", env=cli_env, cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        out = first.stdout
        for line in ("✓ preprocess", "✓ train", "✓ evaluate", "✓ register", "✓ finalize"):
            assert line in out
        assert "MLflow UI: http://127.0.0.1:" in out
        assert "Winner:" in out
        assert "version 1: promoted to @champion" in out

        second = _kfp_mlflow("run", env=cli_env, cwd=tmp_path)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "version 2: not promoted (@champion is v1)" in second.stdout
        assert "does not beat @champion v1" in second.stdout
        # Decided like for like: v1 re-scored on the second run's test rows by mlflow.evaluate.
        # (Words, not line breaks: the console wraps the decision at its width.)
        said = " ".join(second.stdout.split())
        assert "test rows v2 " in said and "(mlflow.evaluate)" in said
        # One server served both runs: the second run reused it.
        url = first.stdout.split("MLflow UI: ")[1].split()[0]
        assert url == second.stdout.split("MLflow UI: ")[1].split()[0]
        third = _kfp_mlflow("run", env=cli_env, cwd=tmp_path)
        assert third.returncode == 0, third.stdout + third.stderr
        # Read back from the registry: each later version met @champion v1 on its own test rows.
        client = MlflowClient(url)
        versions = client.search_model_versions("name = 'kfp-mlflow-model'")
        assert sorted(int(v.version) for v in versions) == [1, 2, 3]
        for version in versions:
            if version.version != "1":
                assert "kfp_mlflow.h2h.v1" in version.tags, version.tags
        assert client.get_model_version_by_alias("kfp-mlflow-model", "champion").version == "1"
        runs = client.search_runs([client.get_experiment_by_name("kfp-mlflow").experiment_id])
        assert "RUNNING" not in {run.info.status for run in runs}
    finally:
        stopped = _kfp_mlflow("server", "stop", env=cli_env, cwd=tmp_path)
    assert "stopped the local MLflow server" in stopped.stdout
    again = _kfp_mlflow("server", "stop", env=cli_env, cwd=tmp_path)
    assert "no local server was running" in again.stdout


@pytest.mark.timeout(RUN_DEADLINE_S)
def test_two_first_runs_at_once_share_one_local_server(cli_env, tmp_path):
    from tests.support.faults import RUNTIME_PIPELINE

    (tmp_path / "runtime.py").write_text(RUNTIME_PIPELINE)
    command = [shutil.which("kfp-mlflow"), "run", "--pipeline", "runtime.py:runtime",
               "--arg", 'modes=["count-threads"]']  # fmt: skip
    both = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        outputs = [process.communicate(timeout=RUN_DEADLINE_S - 30) for process in both]
        for process, (stdout, stderr) in zip(both, outputs, strict=True):
            assert process.returncode == 0, stdout + stderr
        urls = {stdout.split("MLflow UI: ")[1].split()[0] for stdout, _ in outputs}
        assert len(urls) == 1, urls
    finally:
        _kfp_mlflow("server", "stop", env=cli_env, cwd=tmp_path)


@pytest.mark.timeout(120)
def test_history_in_a_folder_without_a_store_starts_no_server(cli_env, tmp_path):
    result = _kfp_mlflow("history", "--model-name", "anything", env=cli_env, cwd=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    assert not (tmp_path / ".kfp-mlflow" / "mlflow" / "server.json").exists()
    assert not (tmp_path / ".kfp-mlflow" / "mlflow" / "mlflow.db").exists()
