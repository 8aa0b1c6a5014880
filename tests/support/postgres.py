"""A throwaway PostgreSQL 15 cluster on 127.0.0.1 for the tests (the backend the manifests deploy).

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` user and
every PostgreSQL command runs through ``runuser -u postgres``; as anyone else it runs as them.
The cluster lives in its own directory under the system temp dir rather than pytest's: pytest's
directories are private to the invoking user, and a Unix socket path must stay under ~100 bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kfp_mlflow.core.net import free_port

_SEARCH = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"


def _binary(name: str) -> str:
    for directory in _SEARCH:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's `{name}` is missing from {', '.join(_SEARCH)} and PATH: "
            "install postgresql-15 (Debian) to run the PostgreSQL-backed tests"
        )
    return found


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgreSQL:
    directory: Path
    port: int

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def dsn(self) -> str:
        """libpq's form (trust auth, on 127.0.0.1 only)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def uri(self) -> str:
        """What `mlflow server --backend-store-uri` takes: the driver named, as the manifests do
        (SQLAlchemy 2.1 would pick psycopg 3 for a bare ``postgresql://``)."""
        return self.dsn.replace("postgresql://", "postgresql+psycopg2://", 1)

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions), then remove the cluster's directory."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                _as_owner([_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(timeout: float = 60.0) -> PostgreSQL:
    """initdb a new cluster, start it on 127.0.0.1 and a free port, wait until it accepts logins."""
    directory = Path(tempfile.mkdtemp(prefix="kfp-mlflow-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user=SUPERUSER)
    server = PostgreSQL(directory, free_port())
    try:
        _run(
            [_binary("initdb"), "-D", str(server.data), "-A", "trust", "-U", SUPERUSER,
             "--no-sync", "-E", "UTF8", "--locale", "C"],
            server, timeout,
        )  # fmt: skip
        # Durability settings are off: the cluster is thrown away, and they do not change what
        # a transaction sees, so the race behaviour under test is PostgreSQL's own.
        options = (
            f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        _run(
            [_binary("pg_ctl"), "-D", str(server.data), "-o", options, "-l", str(server.log),
             "-t", str(int(timeout)), "-w", "start"],
            server, timeout,
        )  # fmt: skip
        _wait_for_login(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _run(command: list[str], server: PostgreSQL, timeout: float) -> None:
    done = subprocess.run(
        _as_owner(command), capture_output=True, text=True, timeout=timeout, cwd=server.directory
    )
    if done.returncode != 0:
        log = server.log.read_text(errors="replace")[-2000:] if server.log.exists() else ""
        raise RuntimeError(
            f"`{Path(command[0]).name}` failed ({done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-2000:]} {log}".strip()
        )


def _wait_for_login(server: PostgreSQL, timeout: float) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(server.dsn, connect_timeout=2).close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL on 127.0.0.1:{server.port} refused logins for {timeout:.0f}s "
                    f"({str(error).strip()}); see {server.log}"
                ) from error
            time.sleep(0.1)
