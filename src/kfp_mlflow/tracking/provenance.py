"""What a run records so its model can be rebuilt: versions, image, commit, seeds."""

from __future__ import annotations

import platform
from importlib import metadata

from kfp_mlflow._version import __version__
from kfp_mlflow.core.settings import Settings
from kfp_mlflow.core.tag_schema import (
    TAG_GIT_COMMIT,
    TAG_IMAGE,
    TAG_IMAGE_DIGEST,
    TAG_LOCK_SHA256,
    TAG_RUNNER,
    VERSION_PREFIX,
)

# The libraries whose versions decide what a model is and how it predicts.
_TRACKED_PACKAGES = ("mlflow", "scikit-learn", "pandas", "numpy", "pyarrow", "kfp")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a model."""
    versions = {"kfp-mlflow": __version__, "python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance_tags(settings: Settings) -> dict[str, str]:
    """Tags for every run and model version: versions, runner, image and commit when known."""
    tags = {f"{VERSION_PREFIX}{name}": value for name, value in package_versions().items()}
    tags[TAG_RUNNER] = settings.runner
    tags[TAG_IMAGE] = settings.image if settings.runner != "local" else "local-process"
    if settings.image_digest:
        tags[TAG_IMAGE_DIGEST] = settings.image_digest
    if settings.lock_sha256:
        tags[TAG_LOCK_SHA256] = settings.lock_sha256
    if settings.git_commit:
        tags[TAG_GIT_COMMIT] = settings.git_commit
    return tags


def pip_requirements() -> list[str]:
    """Exact requirements for a logged model (inferring them costs seconds per model)."""
    versions = package_versions()
    return [
        f"{name}=={versions[name]}"
        for name in ("mlflow", "scikit-learn", "pandas", "numpy")
        if name in versions
    ]
