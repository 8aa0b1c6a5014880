"""The README's main command: `kfp-mlflow run` starts its own MLflow server; run it twice."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture
def cli_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}


def _kfp_mlflow(*args: str, env, cwd) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("kfp-mlflow")
    assert executable, "the console script is installed with the package"
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_run_twice_promotes_once_with_a_local_server(cli_env, tmp_path):
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
        assert (
            first.stdout.split("MLflow UI: ")[1].split()[0]
            == second.stdout.split("MLflow UI: ")[1].split()[0]
        )
    finally:
        stopped = _kfp_mlflow("server", "stop", env=cli_env, cwd=tmp_path)
    assert "stopped" in stopped.stdout
