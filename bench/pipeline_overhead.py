"""Benchmark: the default local pipeline against a plain tracked script, side by side.

    python bench/pipeline_overhead.py [--repeat N]

Against one real `mlflow server` on 127.0.0.1 (started and stopped here), interleaved N times:

* **plain** — bench/_plain_tracked.py in one cold process: the four default candidates fitted
  one after the other, a parent and a child run each with params, metrics and
  ``mlflow.sklearn.log_model``, the best registered and aliased @champion; twice: the plain way
  (MLflow infers each model's requirements) and with requirements given (as our steps do);
* **pipeline warm** — ``kfp-mlflow run`` (the default pipeline; never the first run: each meets
  a champion like for like, head-to-head included), tasks forked from the warm supervisor;
* **pipeline cold** — the same with ``KFP_MLFLOW_WARM_TASKS=false``: a fresh interpreter per
  task (what every task paid before the supervisor).

Then, in a fresh directory with no server, the first run (server start included) against the
second, and the idle local server's memory. Per task it prints where the time goes: start (fork
or exec to the executor's first line), MLflow requests (counted in every task process by
bench/_request_probe), and the rest — the work.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KFP_MLFLOW_"))}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def kfp_mlflow() -> list[str]:
    return [sys.executable, "-c", "from kfp_mlflow.cli import main; main()"]


def breakdown(run_dir: Path, probe: Path) -> dict[str, list[dict[str, float]]]:
    """Per task of one pipeline run: start, MLflow requests and their seconds, wall."""
    from kfp_mlflow.runtime.supervisor import ExitFacts
    from kfp_mlflow.runtime.task_records import read_records

    status = run_dir / "tasks"
    facts = ExitFacts.read_all(status)
    requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in probe.read_text().splitlines() if probe.exists() else []:
        record = json.loads(line)
        requests[record["task"]].append(record)
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for record in read_records(status):
        fact = facts.get(record.pid)
        if fact is None or record.ended is None:
            continue
        step = record.step
        probed = requests.get(record.task, [])
        count = statistics.mean(r["requests"] for r in probed) if probed else float("nan")
        http = statistics.mean(r["request_seconds"] for r in probed) if probed else float("nan")
        rows[step].append(
            {
                "start": record.started - fact.started,
                "wall": fact.seconds,
                "requests": count,
                "http": http,
            }
        )
    return rows


def pipeline_run(work: Path, env: dict[str, str], probe: Path) -> tuple[float, Path]:
    seconds = timed([*kfp_mlflow(), "run"], env | {"KFP_MLFLOW_BENCH_PROBE": str(probe)}, work)
    latest = max((work / ".kfp-mlflow" / "runs").iterdir(), key=lambda p: p.name)
    return seconds, latest


def server_memory_mb(directory: Path) -> tuple[float, int]:
    """Resident memory of the local server's process group, and its process count."""
    state = json.loads((directory / "server.json").read_text())
    group = os.getpgid(int(state["pid"]))
    total, count = 0, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    count += 1
        except (OSError, ProcessLookupError):
            continue
    return total / 1024, count


def main() -> None:  # noqa: PLR0915 - one report, top to bottom
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    arguments = parser.parse_args()

    from kfp_mlflow.local.server import LocalMlflowServer

    times: dict[str, list[float]] = defaultdict(list)
    tasks: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp, LocalMlflowServer(Path(tmp) / "mlflow") as server:
        base = clean_env(MLFLOW_TRACKING_URI=server.url, MLFLOW_EXPERIMENT_NAME="bench")
        work = Path(tmp) / "work"
        work.mkdir()
        probe_path = str(HERE / "_request_probe")
        piped = base | {
            "KFP_MLFLOW_MODEL_NAME": "bench-pipeline",
            "PYTHONPATH": os.pathsep.join(filter(None, [probe_path, os.environ.get("PYTHONPATH")])),
        }
        say("warm-up: the first pipeline run registers the champion the later ones meet")
        pipeline_run(work, piped, Path(tmp) / "probe-0.jsonl")
        for round_ in range(1, arguments.repeat + 1):
            plain = [sys.executable, str(HERE / "_plain_tracked.py"), "bench-plain"]
            times["plain"].append(timed([*plain, "--infer-requirements"], base, work))
            times["given"].append(timed(plain, base, work))
            for way, extra in (("warm", {}), ("cold", {"KFP_MLFLOW_WARM_TASKS": "false"})):
                probe = Path(tmp) / f"probe-{way}-{round_}.jsonl"
                seconds, run_dir = pipeline_run(work, piped | extra, probe)
                times[way].append(seconds)
                tasks[way] = breakdown(run_dir, probe)
            say(
                f"round {round_}: plain {times['plain'][-1]:.1f} s (requirements given "
                f"{times['given'][-1]:.1f} s), pipeline warm {times['warm'][-1]:.1f} s, "
                f"cold {times['cold'][-1]:.1f} s"
            )

    # The README's first command on a fresh machine: server start included, then again.
    fresh = Path(tempfile.mkdtemp())
    try:
        first = timed([*kfp_mlflow(), "run"], clean_env(), fresh)
        second = timed([*kfp_mlflow(), "run"], clean_env(), fresh)
        time.sleep(5)  # idle
        memory, processes = server_memory_mb(fresh / ".kfp-mlflow" / "mlflow")
    finally:
        subprocess.run([*kfp_mlflow(), "server", "stop"], env=clean_env(), cwd=fresh, check=False)
        shutil.rmtree(fresh, ignore_errors=True)

    plain = statistics.median(times["plain"])
    say()
    say(f"{'way':<34}{'median s':>9}{'min':>7}{'max':>7}{'/ plain':>9}")
    say("(/ plain: against the plain way, MLflow inferring requirements)")
    for way, label in (
        ("plain", "plain tracked script (1 process)"),
        ("given", "  the same, requirements given"),
        ("warm", "kfp-mlflow run, warm tasks"),
        ("cold", "kfp-mlflow run, cold tasks"),
    ):
        values = times[way]
        say(
            f"{label:<34}{statistics.median(values):>9.1f}{min(values):>7.1f}{max(values):>7.1f}"
            f"{statistics.median(values) / plain:>9.2f}"
        )
    say()
    say(f"fresh directory: first run {first:.1f} s (server start included), second {second:.1f} s,")
    say(
        f"  ratio {first / second:.2f}; idle local server {memory:.0f} MB in {processes} process(es)"
    )
    say()
    say("per task, last round (mean per task of the step; seconds)")
    say(f"{'step':<11}{'n':>3}  {'warm: start':>11}{'MLflow':>8}{'req':>5}{'work':>7}"
        f"  {'cold: start':>11}{'MLflow':>8}{'req':>5}{'work':>7}")  # fmt: skip
    for step in ("preprocess", "train", "evaluate", "register", "finalize"):
        cells = []
        count = 0
        for way in ("warm", "cold"):
            rows = tasks.get(way, {}).get(step, [])
            count = max(count, len(rows))
            if not rows:
                cells.append(f"{'':>31}")
                continue
            start = statistics.mean(r["start"] for r in rows)
            http = statistics.mean(r["http"] for r in rows)
            requests = statistics.mean(r["requests"] for r in rows)
            work_s = statistics.mean(r["wall"] for r in rows) - start - http
            cells.append(f"{start:>11.2f}{http:>8.2f}{requests:>5.0f}{work_s:>7.2f}")
        say(f"{step:<11}{count:>3}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
