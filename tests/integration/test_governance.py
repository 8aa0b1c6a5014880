"""After the registry: every move of @champion is audited; a rollback is sticky against later
pipeline runs (racing ones included) until a person approves the demoted version again."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.registry.audit import history
from kfp_mlflow.registry.governance import approve, rollback
from kfp_mlflow.registry.policy import Policy
from kfp_mlflow.registry.promotion import CHAMPION, current_champion, promote
from kfp_mlflow.tracking.runs import KfpContext, open_parent_run
from tests.integration.conftest import client, tracked_environment
from tests.integration.test_promotion_race import _logged_model, _register

POLICY = Policy.for_task("regression")


def _version(mlflow, name, key, rmse, train_run, model_id) -> str:  # type: ignore[no-untyped-def]
    return str(_register(mlflow, name, key, train_run, model_id, {"rmse": rmse})[0].version)


def test_rollback_is_audited_sticky_and_race_safe(backend_server, tmp_path):
    with tracked_environment(backend_server, tmp_path / "work") as names:
        from kfp_mlflow.core.settings import get_settings

        mlflow = client()
        open_parent_run(KfpContext(run_id="gov"), get_settings())
        train_run, model_id = _logged_model(mlflow, names["MLFLOW_EXPERIMENT_NAME"])
        name = names["KFP_MLFLOW_MODEL_NAME"]
        a = _version(mlflow, name, "a", 50.0, train_run, model_id)
        assert promote(mlflow, name, a, POLICY, actor="KFP run one").promoted
        b = _version(mlflow, name, "b", 40.0, train_run, model_id)
        assert promote(mlflow, name, b, POLICY, actor="KFP run two").promoted
        c = _version(mlflow, name, "c", 45.0, train_run, model_id)  # good, but not the best
        assert not promote(mlflow, name, c, POLICY, actor="KFP run three").promoted

        with pytest.raises(ConfigError, match="--reason"):
            rollback(mlflow, name, to=None, reason=" ", actor="ana")
        move = rollback(mlflow, name, to=None, reason="v2 misbehaves in production", actor="ana")
        assert (move.from_version, move.to_version, move.action) == (b, a, "rollback")
        assert current_champion(mlflow, name).version == a
        assert mlflow.get_model_version(name, b).tags["kfp_mlflow.demoted"] == "true"

        # Later pipelines, several at once: neither the demoted v2 nor the older v3 (better
        # than v1 on paper) comes back; the person's choice holds.
        with ThreadPoolExecutor(4) as pool:
            outcomes = list(
                pool.map(lambda v: promote(mlflow, name, v, POLICY, actor="race"), [b, c, b, c])
            )
        assert {o.champion_version for o in outcomes} == {a}
        assert current_champion(mlflow, name).version == a
        # New evidence still counts: a version registered after the rollback that beats it.
        d = _version(mlflow, name, "d", 48.0, train_run, model_id)
        assert promote(mlflow, name, d, POLICY, actor="KFP run four").champion_version == d
        # A person re-approves v2.
        approved = approve(mlflow, name, b, reason="fixed upstream data", actor="ana")
        assert approved.to_version == b
        assert "kfp_mlflow.demoted" not in mlflow.get_model_version(name, b).tags
        assert mlflow.get_model_version_by_alias(name, CHAMPION).version == b

        moves = history(mlflow, name)
        assert [(m.action, m.from_version, m.to_version) for m in moves] == [
            ("pipeline", None, a),
            ("pipeline", a, b),
            ("rollback", b, a),
            ("pipeline", a, d),
            ("promote", d, b),
        ]
        assert moves[2].actor == "ana" and moves[2].reason == "v2 misbehaves in production"
        assert moves[1].actor == "KFP run two"
        assert moves[1].reason.startswith(f"v{b} rmse=40 beats @champion v{a}")


def test_history_rollback_promote_commands(mlflow_server, tmp_path):
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        from kfp_mlflow.core.settings import get_settings

        mlflow = client()
        open_parent_run(KfpContext(run_id="cli"), get_settings())
        train_run, model_id = _logged_model(mlflow, names["MLFLOW_EXPERIMENT_NAME"])
        name = names["KFP_MLFLOW_MODEL_NAME"]
        first = _version(mlflow, name, "x", 50.0, train_run, model_id)
        promote(mlflow, name, first, POLICY, actor="KFP run x")
        second = _version(mlflow, name, "y", 40.0, train_run, model_id)
        promote(mlflow, name, second, POLICY, actor="KFP run y")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFP_MLFLOW_")}
    env |= names | {"KFP_MLFLOW_USER": "operator-7", "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )  # fmt: skip

    back = cli("rollback", "--model-name", name, "--reason", "latency regression")
    assert back.returncode == 0, back.stderr
    assert f"v{second} -> v{first}" in back.stdout
    again = cli("promote", "--model-name", name, "--version", second, "--reason", "fixed")
    assert again.returncode == 0, again.stderr
    shown = cli("history", "--model-name", name)
    assert shown.returncode == 0, shown.stderr
    for text in ("rollback", "latency regression", "operator-7", "promote", "KFP run y"):
        assert text in shown.stdout
    missing = cli("rollback", "--model-name", name, "--to", "99", "--reason", "x")
    assert missing.returncode == 2
    assert "has no version 99" in missing.stderr
    # A misspelt model name is a bad argument: exit 2, one line on stderr, no empty table.
    typo = cli("history", "--model-name", f"{name}-typo")
    assert (typo.returncode, typo.stdout) == (2, "")
    assert len(typo.stderr.strip().splitlines()) == 1
    assert f"{name}-typo" in typo.stderr
