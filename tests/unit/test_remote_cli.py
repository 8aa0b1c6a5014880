"""`kfp-mlflow submit` / `schedule` end to end against the fake KFP API (KFP's own models)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from kfp_mlflow.cli import app, main
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.follow_scripts import FAILURE, SUCCESS

runner = CliRunner()


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """The console script in-process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["kfp-mlflow", *args])
    code = 0
    try:
        main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_submit_prints_the_run_url(fake_kfp, tiny_package) -> None:
    result = runner.invoke(
        app, ["submit", "--host", fake_kfp.url, "--package", str(tiny_package), "-p", "n=5"]
    )
    assert result.exit_code == 0, result.output
    (run,) = fake_kfp.runs.values()
    assert f"{fake_kfp.url}/#/runs/details/{run.run_id}" in result.output
    assert run.runtime_config.parameters == {"n": 5}
    again = runner.invoke(app, ["submit", "--host", fake_kfp.url, "--package", str(tiny_package)])
    assert "(reused)" in again.output


def test_submit_wait_success(fake_kfp, tiny_package, monkeypatch, capsys) -> None:
    fake_kfp.run_script = SUCCESS
    code, out, _ = run_main(
        monkeypatch,
        capsys,
        "submit",
        "--host",
        fake_kfp.url,
        "--package",
        str(tiny_package),
        "--wait",
        "--poll-interval",
        "0.01",
    )
    assert code == 0
    assert "task train: SUCCEEDED" in out
    assert "succeeded" in out


def test_submit_wait_failure_exits_non_zero(fake_kfp, tiny_package, monkeypatch, capsys) -> None:
    fake_kfp.run_script = FAILURE
    code, out, err = run_main(
        monkeypatch,
        capsys,
        "submit",
        "--host",
        fake_kfp.url,
        "--package",
        str(tiny_package),
        "--wait",
        "--poll-interval",
        "0.01",
    )
    assert code == 6
    assert "task train: FAILED" in out
    assert "failed task(s): train" in err
    assert "Traceback" not in err


def test_unknown_param_names_it(fake_kfp, tiny_package, monkeypatch, capsys) -> None:
    code, _, err = run_main(
        monkeypatch,
        capsys,
        "submit",
        "--host",
        fake_kfp.url,
        "--package",
        str(tiny_package),
        "-p",
        "learning_rat=0.1",
    )
    assert code == 2
    assert "learning_rat" in err
    assert fake_kfp.calls == []


def test_401_one_line(tiny_package, monkeypatch, capsys) -> None:
    from tests.fakes.kfp_api import FakeKfpApi

    with FakeKfpApi(token="t0ken") as fake:
        monkeypatch.setenv("KFP_MLFLOW_KFP_TOKEN", "not-the-t0ken")
        code, _, err = run_main(
            monkeypatch, capsys, "submit", "--host", fake.url, "--package", str(tiny_package)
        )
    assert code == 7
    assert "401" in err
    assert err.count("\n") == 1
    assert "t0ken" not in err


def test_unreachable_host_console_script(tiny_package) -> None:
    """The real entry point in a fresh process: one line on stderr, exit 7, within seconds."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{s.getsockname()[1]}"
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from kfp_mlflow.cli import main; main()",
                "submit",
                "--host",
                host,
                "--package",
                str(tiny_package),
            ],
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
        )
    assert done.returncode == 7, done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "no KFP API answers" in done.stderr
    assert time.monotonic() - started < 20


def test_schedule_commands(fake_kfp, tiny_package) -> None:
    host = ["--host", fake_kfp.url]
    created = runner.invoke(
        app,
        [
            "schedule",
            "create",
            "--name",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--package",
            str(tiny_package),
            *host,
        ],
    )
    assert created.exit_code == 0, created.output
    assert "cron '0 0 3 * * *'" in created.output
    listed = runner.invoke(app, ["schedule", "list", *host])
    assert "nightly" in listed.output
    assert "enabled" in listed.output
    assert "paused" in runner.invoke(app, ["schedule", "pause", "nightly", *host]).output
    assert "enabled" in runner.invoke(app, ["schedule", "resume", "nightly", *host]).output
    refused = runner.invoke(app, ["schedule", "delete", "nightly", *host], input="n\n")
    assert refused.exit_code != 0
    assert fake_kfp.recurring
    deleted = runner.invoke(app, ["schedule", "delete", "nightly", "--yes", *host])
    assert deleted.exit_code == 0
    assert not fake_kfp.recurring


@pytest.mark.parametrize("bad", ["0", "11"])
def test_schedule_max_concurrency_flag_range(fake_kfp, tiny_package, bad) -> None:
    result = runner.invoke(
        app,
        [
            "schedule",
            "create",
            "--name",
            "x",
            "--cron",
            "0 3 * * *",
            "--max-concurrency",
            bad,
            "--host",
            fake_kfp.url,
        ],
    )
    assert result.exit_code == 2
