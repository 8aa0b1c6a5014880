"""Scale: a 1,000,000 x 20 Parquet table through the data path and the default pipeline.

    nice -n 10 python bench/data_scale.py [--rows 1000000] [--parts 8] [--keep DIR]
                                          [--no-steps] [--no-pipeline]

Generates the table reproducibly (seed 0: 12 float, 3 integer and 4 text columns plus a float
target; 1% of each float column missing, no target missing) as Spark-style part files under a temporary directory, then:

1. *steps*: times each step of the data path in this process and prints seconds and peak RSS
   per step. Peak RSS is the kernel's high-water mark (VmHWM), reset before each step where the
   kernel allows it.
2. *pipeline*: runs the default training pipeline (default candidates, ``run_local``, one
   subprocess per task) on the table against a real ``mlflow server`` on 127.0.0.1 that this
   script starts and stops, and prints the total wall time, each task's wall time and peak RSS
   (the task process's own ``getrusage`` maximum resident set size, the figure ``/usr/bin/time
   -v`` reports, recorded by the task executor), and the verdict against the targets: under
   10 minutes in all, every task under 3 GB. As a cross-check it also prints the largest peak
   RSS of any process this script waited for (``RUSAGE_CHILDREN``: every task process).

Exit status 1 when the pipeline misses a target. Run it niced: it fills both cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def generate(directory: Path, rows: int, parts: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    columns: dict[str, Any] = {}
    for index in range(12):
        columns[f"num_{index:02d}"] = rng.normal(loc=index, scale=1 + index, size=rows)
    for index, high in enumerate((10, 1_000, 100_000)):
        columns[f"int_{index}"] = rng.integers(0, high, size=rows)
    for index, cardinality in enumerate((5, 40, 300, 900)):
        vocabulary = np.array([f"c{index}_{value:04d}" for value in range(cardinality)])
        columns[f"cat_{index}"] = vocabulary[rng.integers(0, cardinality, size=rows)]
    # Learnable (the default quality gate asks r2 >= 0.1) and partly non-linear, so trees and
    # linear models both have something to find; computed before values go missing, so every
    # row keeps its target and all of them reach the pipeline.
    columns["price"] = np.exp(
        0.3 * columns["num_00"]
        + 0.05 * columns["num_03"]
        + 0.4 * (columns["cat_0"] == "c0_0001")
        + 0.2 * np.sin(columns["num_01"])
        + 0.25 * rng.normal(size=rows)
    )
    for index in range(12):
        columns[f"num_{index:02d}"][rng.random(rows) < 0.01] = np.nan
    table = pa.table(columns)
    out = directory / "table"
    out.mkdir(parents=True)
    (out / "_SUCCESS").write_bytes(b"")
    step = -(-rows // parts)
    for part in range(parts):
        pq.write_table(table.slice(part * step, step), out / f"part-{part:05d}.snappy.parquet")
    return out


def _reset_peak() -> bool:
    try:  # Linux: writing 5 resets VmHWM, so each step's peak is its own
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(name: str, function: Callable[[], Any], results: list[tuple[str, float, float]]) -> Any:
    _reset_peak()
    start = time.perf_counter()
    value = function()
    results.append((name, time.perf_counter() - start, _peak_mib()))
    return value


TARGET_SECONDS = 600.0
TARGET_RSS_MB = 3 * 1024.0


def say(text: str = "") -> None:
    # Not print(): kfp.local patches builtins.print to indent task logs and can leave it so.
    # The terminal's own stream: run_local sends sys.stdout to its log while tasks run.
    out = sys.__stdout__ or sys.stdout
    out.write(text + "\n")
    out.flush()


def data_path(path: Path, rows: int, parts: int, size: float, generated: float) -> None:
    """The data-path steps in this process: read, validate+profile, digest, split."""
    from kfp_mlflow.core.settings import Settings
    from kfp_mlflow.data.datasets import digest, prepare, read_dataset, split

    results: list[tuple[str, float, float]] = []
    settings = Settings()
    frame = _timed("read", lambda: read_dataset(str(path), settings), results)
    prepared = _timed(
        "validate+profile",
        lambda: prepare(frame, "price", "", 30, test_size=0.2),
        results,
    )
    _timed("digest", lambda: digest(prepared.frame), results)
    split_parts = _timed(
        "split (incl. digest)",
        lambda: split(prepared.frame, "price", prepared.task, 42, 0.2),
        results,
    )
    say(
        f"table: {rows:,} rows x {frame.shape[1]} columns, {parts} part files,"
        f" {size:.0f} MiB Parquet, generated in {generated:.1f}s"
    )
    say(
        f"task {prepared.task}; dropped {len(prepared.profile.dropped)} column(s); "
        f"train {len(split_parts.train):,} / test {len(split_parts.test):,} rows; "
        f"digest {split_parts.digest[:12]}"
    )
    say(f"{'step':<22}{'seconds':>9}{'peak RSS MiB':>14}")
    for name, seconds, peak in results:
        say(f"{name:<22}{seconds:>9.2f}{peak:>14.0f}")
    say(f"{'process peak':<22}{'':>9}{_peak_mib():>14.0f}")


def pipeline(path: Path, scratch: Path) -> bool:
    """The default training pipeline on ``path`` with kfp.local and a real MLflow server;
    prints per-task figures and the verdict, returns whether both targets were met."""
    from kfp_mlflow.core.settings import get_settings
    from kfp_mlflow.local.runner import TaskEvent, run_local
    from kfp_mlflow.local.server import LocalMlflowServer

    def progress(event: TaskEvent) -> None:
        ended = f" after {event.seconds:.0f}s" if event.status != "RUNNING" else ""
        say(f"  {time.strftime('%H:%M:%S')} {event.task} {event.status}{ended}")

    saved = dict(os.environ)
    with LocalMlflowServer(scratch / "mlflow") as server:
        os.environ.update(
            {
                "MLFLOW_TRACKING_URI": server.url,
                "MLFLOW_EXPERIMENT_NAME": "bench-scale",
                "KFP_MLFLOW_MODEL_NAME": "bench-scale-model",
                "KFP_MLFLOW_WORK_DIR": str(scratch / "work"),
            }
        )
        get_settings.cache_clear()
        try:
            say(f"pipeline: default candidates on {path}, MLflow at {server.url}")
            result = run_local(
                None, {"data": str(path), "target": "price"}, get_settings(), on_event=progress
            )
        finally:
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()
        # Every task process has been waited for; the server (also a child) has not yet.
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    say()
    say(f"{'task':<40}{'state':>10}{'seconds':>9}{'peak RSS MiB':>14}")
    for record in result.tasks:
        peak = f"{record.peak_rss_mb:.0f}" if record.peak_rss_mb else "?"
        label = record.label or record.task
        say(f"{label:<40}{record.state:>10}{record.seconds:>9.1f}{peak:>14}")
    worst = max((record.peak_rss_mb or 0.0 for record in result.tasks), default=0.0)
    say(f"{'largest peak RSS of any task process (RUSAGE_CHILDREN)':<59}{children_peak:>14.0f}")
    decision = result.decision
    outcome = f"winner {decision.winner}, promoted {decision.promoted}" if decision else "none"
    say(f"total wall time {result.seconds:.1f}s; decision: {outcome}")
    if decision is not None:
        for entry in decision.candidates:
            value = entry.get("metrics", {}).get(decision.metric)
            say(f"  {entry['candidate']:<38}{decision.metric} {value}")
    in_time = result.succeeded and result.seconds < TARGET_SECONDS
    in_memory = result.succeeded and max(worst, children_peak) < TARGET_RSS_MB
    verdict = "PASS" if in_time and in_memory else "FAIL"
    say(
        f"verdict: {verdict}: wall {result.seconds:.0f}s vs {TARGET_SECONDS:.0f}s "
        f"({'ok' if in_time else 'missed'}); largest task peak "
        f"{max(worst, children_peak):.0f} MiB vs {TARGET_RSS_MB:.0f} MiB "
        f"({'ok' if in_memory else 'missed'})"
    )
    if result.error is not None:
        say(f"pipeline failed: {result.error.message} ({result.log_path})")
    return in_time and in_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    parser.add_argument("--no-steps", action="store_true", help="skip the in-process steps")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipeline run")
    arguments = parser.parse_args()

    passed = True
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        root = arguments.keep or scratch
        start = time.perf_counter()
        path = (
            root / "table"
            if (root / "table" / "_SUCCESS").exists()
            else generate(root, arguments.rows, arguments.parts)
        )
        generated = time.perf_counter() - start
        size = sum(file.stat().st_size for file in path.iterdir()) / 2**20
        if not arguments.no_steps:
            data_path(path, arguments.rows, arguments.parts, size, generated)
        if not arguments.no_pipeline:
            say()
            passed = pipeline(path, scratch)
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
