"""Argo CD only sees Git: every Application's path must render from a fresh clone of HEAD.

The clone is of the committed HEAD (uncommitted or gitignored files are not in it, which is the
point: a path that needs a generated file fails here as it would in Argo CD). Applications are
discovered as Argo CD finds them: `manifests/gitops` (what the operator applies) renders the
root Application, whose path renders the child Applications, and so on. Each path whose
repoURL is this repository is built with the real kubectl's kustomize, as Argo CD's
`kustomize build <path>` with default options. Paths with remote bases (KFP, cert-manager from
GitHub) cannot render offline: their remote entries are checked for pinned refs instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.manifests.conftest import ROOT

ENTRY = "manifests/gitops"  # `kubectl apply -k manifests/gitops`, per docs/cluster.md
_REMOTE = re.compile(r"^(https?://|github\.com/|git@|ssh://)")
_PINNED = re.compile(r"(\?ref=v?\d+\.\d+\.\d+$)|(/v\d+\.\d+\.\d+/)")


def _kustomize(kubectl: Path, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(kubectl), "kustomize", str(directory)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _remote_entries(directory: Path) -> list[str]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    entries = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    return [entry for entry in entries if _REMOTE.match(entry)]


def _local_directories(directory: Path) -> list[Path]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    entries = [*kustomization.get("resources", []), *kustomization.get("components", [])]
    return [
        directory / entry
        for entry in entries
        if not _REMOTE.match(entry) and (directory / entry / "kustomization.yaml").is_file()
    ]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    git = shutil.which("git")
    head = subprocess.run(
        [git or "git", "-C", str(ROOT), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if git is None or head.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: nothing committed to clone ({head.stderr})")
    target = tmp_path_factory.mktemp("clone") / "repo"
    started = time.perf_counter()
    subprocess.run(
        [git, "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    subprocess.run(
        [git, "-C", str(target), "checkout", "--quiet", "--detach", head.stdout.strip()],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    print(f"cloned {head.stdout.strip()[:12]} in {time.perf_counter() - started:.2f} s")
    return target


def test_every_application_path_renders_from_a_clean_clone(clone: Path, kubectl: Path) -> None:
    started = time.perf_counter()
    entry = _kustomize(kubectl, clone / ENTRY)
    assert entry.returncode == 0, f"kubectl kustomize {ENTRY} (clean clone): {entry.stderr}"
    pending: list[dict[str, Any]] = [
        doc for doc in yaml.safe_load_all(entry.stdout) if doc and doc["kind"] == "Application"
    ]
    assert pending, f"{ENTRY} renders no Argo CD Application"
    ours = pending[0]["spec"]["source"]["repoURL"]
    seen: dict[str, str] = {}
    rendered, remote = [], []
    while pending:
        app = pending.pop(0)
        name, source = app["metadata"]["name"], app["spec"]["source"]
        assert name not in seen, f"two Applications named {name}"
        assert source["repoURL"] == ours, f"{name}: repoURL {source['repoURL']} is not {ours}"
        path = source["path"]
        seen[name] = path
        directory = clone / path
        assert (directory / "kustomization.yaml").is_file(), f"{name}: {path} is not in Git"
        unpinned = [e for e in _remote_entries(directory) if not _PINNED.search(e)]
        assert not unpinned, f"{name}: {path} has unpinned remote bases {unpinned}"
        if _remote_entries(directory):
            # Its local parts (e.g. kfp/install's ../local) must still render from the clone.
            for local in _local_directories(directory):
                result = _kustomize(kubectl, local)
                assert result.returncode == 0, f"{name}: kustomize build {local}:\n{result.stderr}"
            remote.append(f"{name} ({path}): {', '.join(_remote_entries(directory))}")
            continue
        result = _kustomize(kubectl, directory)
        assert result.returncode == 0, (
            f"Application {name}: kustomize build {path}:\n{result.stderr}"
        )
        objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        assert objects, f"Application {name}: {path} renders nothing"
        rendered.append(f"{name} ({path}): {len(objects)} objects")
        pending += [obj for obj in objects if obj["kind"] == "Application"]
    print(
        f"rendered from the clone in {time.perf_counter() - started:.2f} s:", *rendered, sep="\n  "
    )
    print("not rendered offline (remote bases from GitHub, pins checked):", *remote, sep="\n  ")
    # The root app of apps and its five layers; the ones we deploy ourselves all render.
    assert set(seen) == {
        "kfp-mlflow",
        "cert-manager",
        "kfp-cluster-scoped",
        "kfp",
        "mlflow",
        "pipelines",
    }
    assert {line.split(" ")[0] for line in rendered} == {"kfp-mlflow", "mlflow", "pipelines"}


def test_the_clone_holds_no_ignored_or_generated_input(clone: Path) -> None:
    """Guard for the test above: the clone really lacks what only a working tree can have."""
    assert not (clone / "manifests/mlflow/overlays/kind/dev-postgres.env").exists()
    untracked = subprocess.run(
        ["git", "-C", str(clone), "status", "--porcelain", "--ignored"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert untracked == ""
