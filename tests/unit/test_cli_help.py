"""What `--help` prints is what the docstrings say. Rich renders the help and reads ``[x]`` as
markup, so an unescaped ``kfp-mlflow[onnx]`` would print as ``kfp-mlflow``: an install command
that installs the wrong thing."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from kfp_mlflow.cli import app

# A package with an extra, as an install command names it: kfp-mlflow[onnx].
_EXTRA = re.compile(r"([\w-]+)\\?\[(\w+)\]")


def _documented() -> list[tuple[str, str]]:
    found = []
    for command in app.registered_commands:
        doc = command.callback.__doc__ or "" if command.callback else ""
        name = command.name or (command.callback.__name__ if command.callback else "")
        found += [(name, f"{package}[{extra}]") for package, extra in _EXTRA.findall(doc)]
    return found


def test_export_onnx_help_names_the_install_command_with_its_extra():
    shown = CliRunner().invoke(app, ["export-onnx", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "pip install 'kfp-mlflow[onnx]'" in shown.output


@pytest.mark.parametrize(("command", "text"), _documented())
def test_no_help_drops_a_bracketed_extra(command, text):
    shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert text in shown.output
