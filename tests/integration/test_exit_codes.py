"""What the CLI says and returns: the failing step's own message and exit code (read from the
task's status record, not from kfp.local's log), and bad arguments refused before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

FAILING_STEPS = """
from kfp import dsl
import kfp_mlflow

@kfp_mlflow.component
def fail(kind: str) -> None:
    import kfp_mlflow
    errors = {
        "contract": kfp_mlflow.ContractError("step: input 'x' lacks field 'task'"),
        "data": kfp_mlflow.DataError("data: column 'y' has no rows"),
        "tracking": kfp_mlflow.TrackingError("MLflow refused to log: boom"),
        "promotion": kfp_mlflow.PromotionError("cannot move @champion: boom"),
        "bug": ZeroDivisionError("division by zero in my step"),
    }
    raise errors[kind]

@dsl.pipeline(name="failing")
def failing(kind: str = "bug") -> None:
    with kfp_mlflow.exit_handler():
        fail(kind=kind)
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}
    return env | extra


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("contract", 2, "step: input 'x' lacks field 'task'"),
        ("data", 3, "data: column 'y' has no rows"),
        ("tracking", 4, "MLflow refused to log: boom"),
        ("promotion", 5, "cannot move @champion: boom"),
        ("bug", 6, "division by zero in my step"),
    ],
)
def test_the_steps_own_message_and_exit_code_reach_the_cli(
    kind, code, message, mlflow_server, tmp_path
):
    (tmp_path / "failing.py").write_text(FAILING_STEPS)
    experiment = f"exit-{kind}"
    env = _env(MLFLOW_TRACKING_URI=mlflow_server, MLFLOW_EXPERIMENT_NAME=experiment)
    result = _cli(
        "run", "--pipeline", "failing.py:failing", "--arg", f"kind={kind}", env=env, cwd=tmp_path
    )
    assert result.returncode == code, result.stdout + result.stderr
    assert f"error: step fail failed: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert {run.info.status for run in runs} == {"FAILED"}  # the step's run and its parent


BAD_ARGUMENTS = [
    (["--threshold", "r2>>0.3"], "thresholds: cannot parse 'r2>>0.3'"),
    (["--primary-metric", "auc"], "primary_metric: 'auc' is not a"),
    (["--model-name", "team/model"], "model_name: 'team/model' contains '/' or ':'"),
    (
        ["--arg", 'candidates=[{"family": "linear", "params": {"alpah": 1}}]'],
        "'linear' has a parameter Ridge does not accept: alpah",
    ),
    (["--search-space", "missing.yaml"], "--search-space missing.yaml: file not found"),
    (["--arg", "candidates=[]"], "candidates: the search space is empty"),
    (["--arg", "no_such=1"], "no parameter 'no_such'"),
    (["--min-improvement", "-1"], "min_improvement: -1.0 must not be negative"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_arguments_exit_2_before_anything_starts(args, message, tmp_path):
    # No MLFLOW_TRACKING_URI: a run would start a local server under .kfp-mlflow/.
    result = _cli("run", *args, env=_env(), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".kfp-mlflow").exists()  # no server, no run, no task


def test_compile_refuses_bad_defaults_of_a_user_pipeline(tmp_path):
    (tmp_path / "mine.py").write_text(
        "from kfp import dsl\nimport kfp_mlflow\n\n"
        "@dsl.pipeline(name='mine')\n"
        "def mine(thresholds: list = ['rmse=<3']) -> None:\n"
        "    kfp_mlflow.preprocess(data='x', target='y', task='', seed=1, test_size=0.2, min_rows=30)\n"
    )
    result = _cli(
        "compile", "--pipeline", "mine.py:mine", "-o", "out.yaml", env=_env(), cwd=tmp_path
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "thresholds: cannot parse 'rmse=<3'" in result.stderr
    assert not (tmp_path / "out.yaml").exists()
    ok = _cli("compile", "--pipeline", "mine.py:mine", "--arg", "x=1", env=_env(), cwd=tmp_path)
    assert ok.returncode == 2  # compile takes no --arg: a usage error, not a crash


def test_the_12390_shape_is_refused_by_compile_and_run(tmp_path):
    (tmp_path / "loop.py").write_text(
        "from kfp import dsl\nimport kfp_mlflow\n\n"
        "@kfp_mlflow.component\ndef say(message: str) -> None:\n    print(message)\n\n"
        "@dsl.pipeline(name='loop')\n"
        "def loop(xs: list = ['a', 'b']) -> None:\n"
        "    with kfp_mlflow.exit_handler():\n"
        "        with dsl.ParallelFor(xs) as x:\n"
        "            say(message=f'hello {x}')\n"
    )
    for args in (("compile", "-o", "loop.yaml"), ("run",)):
        result = _cli(*args, "--pipeline", "loop.py:loop", env=_env(), cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        line = _one_line_of(result.stderr)
        assert "comp-exit-handler-1" in line and "pipelinechannel--xs-loop-item" in line
        assert "build the string inside it" in line
    assert not (tmp_path / "loop.yaml").exists()
    assert not (tmp_path / ".kfp-mlflow").exists()


def _one_line_of(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]
