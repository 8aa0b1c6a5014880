"""docs/extending.md's "Run the default pipeline from Python" runs as written, against a real
MLflow server: the snippet is read from the document, so the docs cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.conftest import client, tracked_environment

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def _snippet() -> str:
    section = DOC.read_text().split("## 5. Run the default pipeline from Python", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the section has a Python example"
    return match.group(1)


def test_the_documented_python_run_trains_registers_and_returns_the_decision(
    mlflow_server, tmp_path
):
    with tracked_environment(mlflow_server, tmp_path / "work") as names:
        scope: dict[str, object] = {}
        exec(compile(_snippet(), str(DOC), "exec"), scope)  # our own document
        result = scope["result"]
        champion = client().get_model_version_by_alias(names["KFP_MLFLOW_MODEL_NAME"], "champion")
    assert result.succeeded  # type: ignore[attr-defined]
    assert result.decision.registered_version == champion.version == "1"  # type: ignore[attr-defined]
    assert champion.tags["kfp_mlflow.candidate"] == "ridge"
