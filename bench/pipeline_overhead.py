"""Benchmark: the same training work as a plain script and as the local pipeline, both tracked.

    python bench/pipeline_overhead.py [--repeat N]

Both ways run preprocess, the default candidates' train and evaluate, and register, against one
real `mlflow server` on 127.0.0.1 that this script starts and stops. It prints wall times, their
ratio, and where the pipeline's extra time goes per task: process start and imports (measured as
a fresh interpreter importing what the step imports), MLflow HTTP requests (counted in every
task process by bench/_request_probe/sitecustomize.py), and the rest (compute, artifact I/O,
kfp executor).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent


def say(text: str = "") -> None:
    # Not print(): kfp.local patches builtins.print to indent task logs and, when two tasks
    # overlap, can leave it patched after the run.
    sys.stdout.write(text + "\n")


# What each step's process imports before it can work (the component body's imports).
STEP_IMPORTS = {
    "preprocess": "import kfp, kfp_mlflow.steps.preprocess, mlflow, mlflow.data, sklearn.model_selection, pandas",
    "train": "import kfp, kfp_mlflow.steps.train, mlflow.sklearn, sklearn.ensemble, pandas",
    "evaluate": "import kfp, kfp_mlflow.steps.evaluate, mlflow.sklearn, sklearn.inspection, matplotlib.pyplot",
    "register": "import kfp, kfp_mlflow.steps.register, mlflow",
    "finalize": "import kfp, kfp_mlflow.tracking, mlflow",
}


class RequestCounter:
    """Counts MLflow HTTP requests made by this process."""

    def __init__(self) -> None:
        import requests

        self.count = 0
        self.seconds = 0.0
        original = requests.Session.request
        counter = self

        def counted(session: Any, *args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(session, *args, **kwargs)
            finally:
                counter.count += 1
                counter.seconds += time.perf_counter() - began

        requests.Session.request = counted  # type: ignore[method-assign]

    def take(self) -> tuple[int, float]:
        taken = (self.count, self.seconds)
        self.count, self.seconds = 0, 0.0
        return taken


def plain_script(
    work: Path, counter: RequestCounter
) -> tuple[float, dict[str, list[dict[str, float]]]]:
    """All steps in this one process, calling the step functions directly."""
    began = time.perf_counter()
    from kfp_mlflow.search_space import default_candidates
    from kfp_mlflow.settings import get_settings
    from kfp_mlflow.steps.evaluate import run_evaluate
    from kfp_mlflow.steps.preprocess import run_preprocess
    from kfp_mlflow.steps.register import run_register
    from kfp_mlflow.steps.train import run_train
    from kfp_mlflow.tracking import KfpContext, close_parent_run, task_run

    settings = get_settings()
    kfp = KfpContext(run_id=f"plain-{time.time_ns()}")
    per_step: dict[str, list[dict[str, float]]] = defaultdict(list)

    def timed(step: str, call: Any, **arguments: Any) -> Any:
        started = time.perf_counter()
        result = call(**arguments)
        requests, request_seconds = counter.take()
        per_step[step].append(
            {
                "seconds": time.perf_counter() - started,
                "requests": requests,
                "request_seconds": request_seconds,
            }
        )
        return result

    counter.take()

    def step(name: str, call: Any, **arguments: Any) -> Any:
        with task_run(step=name, kfp=kfp) as run:
            return call(run, **arguments)

    pre = timed("preprocess", step, name="preprocess", call=run_preprocess,
        data=settings.data, target=settings.target, task="", seed=settings.seed,
        test_size=settings.test_size, min_rows=settings.min_rows,
        train_path=str(work / "train"), test_path=str(work / "test"),
    )  # fmt: skip
    evaluations = []
    for index, candidate in enumerate(default_candidates()):
        model = SimpleNamespace(path=str(work / f"model-{index}"), metadata={})
        trained = timed("train", step, name="train", call=run_train,
            candidate=candidate, dataset=pre.train, train_path=str(work / "train"), model=model,
        )  # fmt: skip
        result = timed("evaluate", step, name="evaluate", call=run_evaluate,
            model_dir=model.path, model=trained, test_path=str(work / "test"), dataset=pre.test,
            evaluation_path=str(work / f"evaluation-{index}"),
            report_path=str(work / f"report-{index}"),
        )  # fmt: skip
        evaluations.append(result.evaluation)
    timed("register", step, name="register", call=run_register,
        evaluations=evaluations, model_name=settings.model_name, primary_metric="",
        thresholds=[], min_improvement=settings.min_improvement,
        decision_path=str(work / "decision"), summary_path=str(work / "summary"),
    )  # fmt: skip
    timed("finalize", close_parent_run, kfp_run_id=kfp.run_id, state="SUCCEEDED")
    return time.perf_counter() - began, per_step


def local_pipeline() -> tuple[float, dict[str, list[dict[str, float]]]]:
    """The local pipeline (kfp.local, a subprocess per task), probed per task."""
    probe = Path(tempfile.mkstemp(suffix=".jsonl")[1])
    environment = dict(os.environ)
    os.environ["KFP_MLFLOW_BENCH_PROBE"] = str(probe)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(HERE / "_request_probe"), os.environ.get("PYTHONPATH")])
    )
    try:
        from kfp_mlflow.runner import run_local
        from kfp_mlflow.settings import get_settings

        get_settings.cache_clear()
        began = time.perf_counter()
        result = run_local(None, {}, get_settings())
        seconds = time.perf_counter() - began
        if not result.succeeded:
            raise SystemExit(f"the pipeline failed; see {result.log_path}")
    finally:
        os.environ.clear()
        os.environ.update(environment)
    per_task: dict[str, list[dict[str, float]]] = defaultdict(list)
    for line in probe.read_text().splitlines():
        record = json.loads(line)
        per_task[record.pop("task")].append(record)
    probe.unlink()
    return seconds, per_task


def import_seconds(statement: str, repeat: int = 3) -> float:
    """Wall time of a fresh interpreter that only imports (best of ``repeat``, warm caches)."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each way (median reported)")
    arguments = parser.parse_args()

    from kfp_mlflow.local_server import LocalMlflowServer

    with tempfile.TemporaryDirectory() as tmp, LocalMlflowServer(Path(tmp) / "mlflow") as server:
        os.environ.update(
            {
                "MLFLOW_TRACKING_URI": server.url,
                "MLFLOW_EXPERIMENT_NAME": "bench",
                "KFP_MLFLOW_MODEL_NAME": "bench-model",
                "KFP_MLFLOW_WORK_DIR": str(Path(tmp) / "work"),
            }
        )
        counter = RequestCounter()
        plain_times, pipeline_times = [], []
        plain_steps: dict[str, list[dict[str, float]]] = {}
        pipeline_steps: dict[str, list[dict[str, float]]] = {}
        for attempt in range(arguments.repeat):
            work = Path(tmp) / f"plain-{attempt}"
            work.mkdir()
            seconds, plain_steps = plain_script(work, counter)
            plain_times.append(seconds)
            seconds, pipeline_steps = local_pipeline()
            pipeline_times.append(seconds)
        imports = {step: import_seconds(statement) for step, statement in STEP_IMPORTS.items()}

    plain, pipeline = statistics.median(plain_times), statistics.median(pipeline_times)
    say(
        f"plain script (one process)      {plain:7.2f} s   runs: {', '.join(f'{t:.2f}' for t in plain_times)}"
    )
    say(
        f"local pipeline (kfp.local)      {pipeline:7.2f} s   runs: {', '.join(f'{t:.2f}' for t in pipeline_times)}"
    )
    say(f"ratio pipeline / plain          {pipeline / plain:7.2f} x")
    say()
    header = f"{'task':<11}{'n':>3}{'plain s':>9}{'task s':>9}{'imports s':>11}{'HTTP req':>10}{'HTTP s':>8}{'rest s':>8}"
    say("per task (pipeline: mean of each task's process; plain: mean of the same step in-process)")
    say(header)
    total_overhead = 0.0
    for step in STEP_IMPORTS:
        runs = pipeline_steps.get(step, [])
        if not runs:
            continue
        seconds = statistics.mean(r["seconds"] for r in runs)
        requests = statistics.mean(r["requests"] for r in runs)
        request_seconds = statistics.mean(r["request_seconds"] for r in runs)
        plain_seconds = statistics.mean(
            r["seconds"] for r in plain_steps.get(step, [{"seconds": 0.0}])
        )
        rest = seconds - imports[step] - request_seconds
        total_overhead += (seconds - plain_seconds) * len(runs)
        say(
            f"{step:<11}{len(runs):>3}{plain_seconds:>9.2f}{seconds:>9.2f}{imports[step]:>11.2f}"
            f"{requests:>10.0f}{request_seconds:>8.2f}{rest:>8.2f}"
        )
    plain_requests = {
        s: statistics.mean(r["requests"] for r in runs) for s, runs in plain_steps.items()
    }
    say()
    say(
        "plain-script HTTP requests per step: "
        + ", ".join(f"{s} {n:.0f}" for s, n in plain_requests.items())
    )
    say(f"task processes' extra time over the plain steps, summed: {total_overhead:.2f} s")
    say(
        "the rest of the gap is kfp.local orchestration and tasks waiting on each other; "
        "ParallelFor iterations run concurrently on the machine's cores"
    )


if __name__ == "__main__":
    main()
