"""Benchmark: the training pipeline with every task in the component image vs as subprocesses.

    python bench/docker_runner.py [--repeat N]

Builds (or finds up to date) the image with .ci/build-image, starts one real `mlflow server` on
127.0.0.1, then runs the pipeline alternately with kfp.local's SubprocessRunner (this
interpreter) and DockerRunner (host networking), each into its own experiment and model. Prints
wall times, their ratio, and the bare cost of starting a container.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_UID = 10001


def say(text: str = "") -> None:
    # Not print(): kfp.local patches builtins.print while tasks run.
    sys.stdout.write(text + "\n")


def run_pipeline(runner: str, tracking_uri: str, root: Path, image_id: str) -> float:
    from kfp import local

    from kfp_mlflow.core.settings import get_settings
    from kfp_mlflow.pipelines.training import build_training_pipeline

    suffix = uuid.uuid4().hex[:8]
    os.environ["MLFLOW_EXPERIMENT_NAME"] = f"bench-{runner}-{suffix}"
    os.environ["KFP_MLFLOW_MODEL_NAME"] = f"bench-{runner}-{suffix}"
    root.mkdir(parents=True)
    if runner == "docker":
        os.chown(root, IMAGE_UID, 0) if os.getuid() == 0 else root.chmod(0o777)
        environment = {
            "MLFLOW_TRACKING_URI": tracking_uri,
            "KFP_MLFLOW_RUNNER": "local",
            "KFP_MLFLOW_IMAGE_DIGEST": image_id,
            "OMP_NUM_THREADS": "1",
        }
        task_runner: object = local.DockerRunner(network_mode="host", environment=environment)
    else:
        task_runner = local.SubprocessRunner(use_venv=False)
    local.init(runner=task_runner, pipeline_root=str(root), raise_on_error=True)  # type: ignore[arg-type]
    get_settings.cache_clear()
    pipeline = build_training_pipeline(get_settings())
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        pipeline()
    seconds = time.perf_counter() - started
    if not list(root.glob("*/register/decision")):
        raise SystemExit(f"{runner}: no decision written under {root}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from kfp_mlflow.local.server import LocalMlflowServer

    built = subprocess.run(
        [str(ROOT / ".ci" / "build-image"), "--no-checks"],
        env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    reference, image_id = next(
        line.split()[2:4] for line in built.splitlines() if line.startswith("build-image: built ")
    )
    container = []
    for _ in range(3):
        began = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", "--network=none", reference, "true"], check=True)
        container.append(time.perf_counter() - began)
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["KFP_MLFLOW_RUNNER"] = "local"
    times: dict[str, list[float]] = {"subprocess": [], "docker": []}
    with tempfile.TemporaryDirectory() as scratch:
        server = LocalMlflowServer(Path(scratch) / "mlflow")
        server.start()
        os.environ["MLFLOW_TRACKING_URI"] = server.url
        try:
            for i in range(args.repeat):
                for runner in ("subprocess", "docker"):
                    root = Path(scratch) / f"{runner}-{i}"
                    times[runner].append(run_pipeline(runner, server.url, root, image_id))
                    say(f"  run {i + 1} {runner:<10} {times[runner][-1]:6.1f}s")
        finally:
            server.stop()
    say(f"image {reference} {image_id}")
    say(f"bare `docker run --rm IMAGE true`: median {statistics.median(container):.2f}s")
    sub, dock = statistics.median(times["subprocess"]), statistics.median(times["docker"])
    say(f"pipeline wall time, median of {args.repeat}: subprocess {sub:.1f}s, docker {dock:.1f}s")
    say(f"docker / subprocess: {dock / sub:.2f}x ({(dock - sub) / 11:+.1f}s per task, 11 tasks)")
    say(f"load average during the bench: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
