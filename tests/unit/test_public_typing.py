"""The public face as a type checker sees it: a user's ``mypy --strict`` over a file that uses
kfp_mlflow accepts every public and every documented name, and rejects a misspelt one.

mypy reads the package as a user's environment holds it: on the path as an installed package
with ``py.typed`` (a tree of links to the checkout), not through the editable install's import
hook, which mypy does not run.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kfp_mlflow

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Survives between runs on a developer's machine (a cold run reads kfp's and MLflow's types).
CACHE = ROOT / ".mypy_cache" / "public-typing"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory holding kfp_mlflow as a wheel installs it (symbolic links)."""
    if shutil.which("mypy") is None:
        pytest.fail("mypy is missing: pip install -e '.[test]'")
    site = tmp_path_factory.mktemp("site")
    package = site / "kfp_mlflow"
    package.mkdir()
    for entry in (ROOT / "src" / "kfp_mlflow").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    return site


def _mypy(site: Path, source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    user_file = tmp_path / "user_pipeline.py"
    user_file.write_text(source)
    config = tmp_path / "mypy.ini"  # the user's own settings: none beyond --strict
    config.write_text("[mypy]\n")
    # PYTHONPATH entries count as installed packages for mypy: their own errors are not the
    # user's, and py.typed decides whether they are read at all, as in a real environment.
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [
            "mypy", "--strict", "--cache-dir", str(CACHE), "--config-file", str(config),
            "--show-error-codes", "--no-error-summary", str(user_file),
        ],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip


def _error_codes(result: subprocess.CompletedProcess[str]) -> set[str]:
    return set(re.findall(r"\[([a-z-]+)\]$", result.stdout, re.MULTILINE))


def _documented_references() -> set[str]:
    """Every ``kfp_mlflow.x.y`` the docs mention, and every name they import from kfp_mlflow."""
    references: set[str] = set()
    for doc in DOCS:
        text = doc.read_text()
        references |= set(re.findall(r"\bkfp_mlflow(?:\.[A-Za-z_][A-Za-z0-9_]*)+", text))
        for module, names in re.findall(r"from (kfp_mlflow[\w.]*) import ([\w, ]+)", text):
            references |= {f"{module}.{name.strip()}" for name in names.split(",")}
    return references


def _split(reference: str) -> tuple[str, list[str]] | None:
    """(the longest importable module, the attribute path after it), or None for a dotted name
    that is no API: an MLflow tag such as ``kfp_mlflow.dataset_digest``."""
    parts = reference.split(".")
    end = 1
    while end < len(parts) and _is_module(".".join(parts[: end + 1])):
        end += 1
    module, rest = ".".join(parts[:end]), parts[end:]
    if module == "kfp_mlflow" and rest and rest[0] not in kfp_mlflow.__all__:
        return None
    return module, rest


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


def _user_file_for(references: set[str]) -> str:
    lines = ["import kfp_mlflow", "USED: list[object] = []"]
    for reference in sorted(references):
        split = _split(reference)
        if split is None:
            continue
        module, rest = split
        if not rest:
            lines.append(f"import {module}")
            continue
        lines.append(f"from {module} import {rest[0]}")
        if len(rest) > 1:
            lines.append(f"USED.append({'.'.join(rest)})")
    return "\n".join(lines) + "\n"


def test_mypy_accepts_the_public_and_documented_names_and_rejects_a_misspelt_one(
    site: Path, tmp_path: Path
) -> None:
    public = [name for name in kfp_mlflow.__all__ if name != "__version__"]
    correct = _user_file_for(_documented_references()) + "".join(
        f"USED.append(kfp_mlflow.{name})\n" for name in public
    )
    accepted = _mypy(site, correct, tmp_path)
    assert accepted.returncode == 0, correct + accepted.stdout

    misspelt = "import kfp_mlflow\n\nkfp_mlflow.run_lokal(1, 2, 3)\n"
    rejected = _mypy(site, misspelt, tmp_path)
    assert rejected.returncode == 1, rejected.stdout
    assert _error_codes(rejected) == {"attr-defined"}, rejected.stdout


def test_documented_names_are_public() -> None:
    """What the docs tell users to import exists and is not private."""
    found = [split for ref in _documented_references() if (split := _split(ref)) is not None]
    assert any(module == "kfp_mlflow.models.families" for module, _ in found), (
        "the scan found nothing"
    )
    for module, rest in found:
        assert not any(part.startswith("_") for part in module.split(".")), module
        if rest:
            assert not rest[0].startswith("_"), (module, rest)
            imported = importlib.import_module(module)
            assert hasattr(imported, rest[0]), f"{module} has no {rest[0]}"
            exported = getattr(imported, "__all__", None)
            assert exported is None or rest[0] in exported, f"{module}.__all__ lacks {rest[0]}"


def test_type_checking_twins_match_the_lazy_exports() -> None:
    """The names mypy sees (the ``TYPE_CHECKING`` block) are the names ``__getattr__`` serves,
    from the same modules, so the two lists cannot drift apart when modules move."""
    tree = ast.parse((ROOT / "src" / "kfp_mlflow" / "__init__.py").read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    imported = {
        alias.asname or alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    declared = {
        node.target.id
        for node in block.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    assert imported == kfp_mlflow._EXPORTS
    assert declared == set(kfp_mlflow._COMPONENTS)


def test_importing_the_package_stays_lazy() -> None:
    code = "import sys, kfp_mlflow; print(sorted(m for m in ('kfp', 'mlflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
