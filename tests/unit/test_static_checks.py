"""The strict ruff and mypy settings in pyproject.toml hold for the whole tree (CI runs these)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} is missing: pip install -e '.[test]'")
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint():
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout


def test_ruff_format():
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout


def test_mypy_strict():
    result = _run("mypy")
    assert result.returncode == 0, result.stdout
    assert "Success: no issues found" in result.stdout
