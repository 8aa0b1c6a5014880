"""The kind demo's database credentials: generated on first use, never committed.

    python -m kfp_mlflow.cluster.dev_secrets manifests/mlflow/overlays/kind/dev-postgres.env

The kind overlay's secretGenerator reads the file (gitignored); `make deploy` and the offline
manifest tests create it. Any other cluster creates its Secrets out of band.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

DEV_POSTGRES_ENV = Path("manifests/mlflow/overlays/kind/dev-postgres.env")


def ensure_dev_postgres_env(path: Path) -> Path:
    """Write ``path`` with a random password unless it exists; return it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        content = (
            "POSTGRES_USER=mlflow\n"
            f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}\n"
            "POSTGRES_DB=mlflow\n"
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(content)
    return path


if __name__ == "__main__":
    print(ensure_dev_postgres_env(Path(sys.argv[1]) if len(sys.argv) > 1 else DEV_POSTGRES_ENV))
