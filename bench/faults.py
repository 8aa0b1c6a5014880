"""Benchmark: faults and bad input through the real CLI, against real servers on 127.0.0.1.

    python bench/faults.py [--serial] [--keep]

Each case runs `kfp-mlflow run` in its own temporary project directory with a clean environment
(only MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME and KFP_MLFLOW_MODEL_NAME set). The cases that
fault the tracking server each own an `mlflow server` they kill, pause or break; the others share
one. The script prints, per case, the exit code, the seconds from the fault (or from the start,
for bad input) to the verdict, the MLflow runs left RUNNING, the model versions registered and
the one-line message; then how many cases hung, printed a traceback, left runs RUNNING or ended
with another exit code than expected.

Faulted and shared-server cases run in two lanes at once (2 cores: about 5 minutes);
``--serial`` runs them one after another.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# The benchmark's own MLflow client: fail at once on a dead server instead of retrying.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "10"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import numpy as np
import pandas as pd
from mlflow import MlflowClient

# The fault tests' pipeline and server handle (run from the repository: python bench/faults.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.faults import PIPELINE, RUNTIME_PIPELINE, Server, processes_of

HANG_S = 150.0  # no verdict this long after the fault (or the start): a hang
STEP_WAIT_S = 120.0  # how long a case waits for the step it faults to start
PAUSE_S = 20.0


_print_lock = threading.Lock()


def say(text: str = "") -> None:
    with _print_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


# --- servers ------------------------------------------------------------------------------------


# --- one case -----------------------------------------------------------------------------------


@dataclass
class Case:
    number: int
    name: str
    expected: int
    lane: str  # "owned": its own server; "shared": the shared one
    body: Callable[[Context], None]


@dataclass
class Result:
    case: Case
    code: int | None = None  # None: no verdict within HANG_S
    seconds: float = 0.0
    running: str = "?"
    running_final: int | None = None
    versions: str = "?"
    message: str = ""
    traceback: bool = False
    stderr: str = ""
    stdout: str = ""
    error: str = ""  # the benchmark itself failed on this case

    @property
    def hung(self) -> bool:
        return self.code is None and not self.error

    @property
    def wrong(self) -> bool:
        return self.code != self.case.expected


@dataclass
class Context:
    case: Case
    root: Path
    url: str = ""
    result: Result = field(init=False)
    project: Path = field(init=False)
    experiment: str = field(init=False)
    model: str = field(init=False)
    process: subprocess.Popen[str] | None = None

    def __post_init__(self) -> None:
        self.result = Result(self.case)
        self.project = self.root / f"case-{self.case.number:02d}" / "project"
        self.project.mkdir(parents=True)
        (self.project / "faults.py").write_text(PIPELINE)
        (self.project / "runtime.py").write_text(RUNTIME_PIPELINE)
        self.experiment = f"bench-faults-{self.case.number:02d}"
        self.model = f"bench-faults-model-{self.case.number:02d}"

    def environment(self) -> dict[str, str]:
        prefixes = ("MLFLOW_", "KFP_MLFLOW_", "KFP_", "AWS_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        return env | {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_EXPERIMENT_NAME": self.experiment,
            "KFP_MLFLOW_MODEL_NAME": self.model,
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`kfp-mlflow <args>` in its own process group (a terminal's foreground job)."""
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
            cwd=self.project, env=self.environment(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        return self.process

    def verdict(self, since: float) -> None:
        """Wait for the command's exit, at most HANG_S after ``since``; record what it said."""
        assert self.process is not None
        try:
            stdout, stderr = self.process.communicate(
                timeout=max(0.0, since + HANG_S - time.monotonic())
            )
            self.result.code = self.process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            stdout, stderr = self.process.communicate(timeout=30)
            self.result.code = None
        self.result.stdout = stdout
        self.result.seconds = time.monotonic() - since
        self.result.stderr = stderr
        self.result.traceback = "Traceback" in stderr
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        self.result.message = lines[-1] if lines else ""

    def run(self, *args: str) -> None:
        """Run a command to its verdict, timed from its start."""
        started = time.monotonic()
        self.start(*args)
        self.verdict(started)

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from kfp_mlflow.cli import main; main()", *args],
            cwd=self.project, env=self.environment(), capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip

    def wait_for_step(self, step: str) -> float:
        """The moment the first run of ``step`` appears; raises if the command ended first."""
        client = MlflowClient(self.url)
        deadline = time.monotonic() + STEP_WAIT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the command ended before any {step} run appeared")
            found = client.get_experiment_by_name(self.experiment)
            if found and client.search_runs(
                [found.experiment_id], filter_string=f"tags.`kfp_mlflow.step` = '{step}'"
            ):
                return time.monotonic()
            time.sleep(0.2)
        raise RuntimeError(f"no {step} run appeared within {STEP_WAIT_S:.0f}s")

    def running(self) -> int:
        client = MlflowClient(self.url)
        found = client.get_experiment_by_name(self.experiment)
        if not found:
            return 0
        runs = client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'")
        return len(runs)

    def record_state(self) -> None:
        """Runs left RUNNING and versions registered, as the server sees them now."""
        count = self.running()
        self.result.running = str(count)
        self.result.running_final = count
        client = MlflowClient(self.url)
        self.result.versions = str(len(client.search_model_versions(f"name = '{self.model}'")))


def data_file(context: Context, frame: pd.DataFrame) -> str:
    path = context.project / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


def frame(rows: int = 60) -> pd.DataFrame:
    """As tests/integration/test_bad_input.py: a feature and a two-class label."""
    rng = np.random.default_rng(5)
    return pd.DataFrame({"x": rng.normal(size=rows), "label": rng.choice(["a", "b"], rows)})


# --- the cases ----------------------------------------------------------------------------------


def server_killed(context: Context, server: Server) -> None:
    context.start("run", "--pipeline", "faults.py:faults")
    context.wait_for_step("work")
    server.kill()
    context.verdict(time.monotonic())
    server.start()  # same store, same port
    before = context.running()
    reconciled = context.command("runs", "reconcile")
    if reconciled.returncode != 0:
        context.result.error = f"reconcile exited {reconciled.returncode}: {reconciled.stderr}"
    context.record_state()
    context.result.running = f"{before} -> {context.result.running_final} (reconcile)"


def server_paused(context: Context, server: Server) -> None:
    context.start(
        "run", "--pipeline", "faults.py:faults", "--arg", "items=[1, 2, 3, 4]", "--arg", "seconds=2"
    )
    context.wait_for_step("work")
    server.signal(signal.SIGSTOP)
    paused = time.monotonic()
    try:
        time.sleep(PAUSE_S)
    finally:
        server.signal(signal.SIGCONT)
    context.verdict(paused)
    context.record_state()


def artifact_store_failing(context: Context, server: Server) -> None:
    artifacts = server.directory / "artifacts"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.write_text("not a directory")  # every upload now answers HTTP 500
    context.run("run", "--pipeline", "faults.py:faults", "--arg", "seconds=0")
    context.record_state()


def task_killed(context: Context, server: Server) -> None:
    context.run("run", "--pipeline", "faults.py:faults", "--arg", "kill=true")
    context.record_state()


def ctrl_c(context: Context) -> None:
    process = context.start("run")
    context.wait_for_step("train")
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    context.verdict(time.monotonic())
    context.record_state()


def bad_data(
    make: Callable[[], pd.DataFrame], target: str, *extra: str
) -> Callable[[Context], None]:
    def body(context: Context) -> None:
        path = data_file(context, make())
        context.run("run", "--data", path, "--target", target, *extra)
        context.record_state()

    return body


def noise() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({"x": rng.normal(size=400), "y": rng.normal(size=400)})  # no signal


def bad_threshold(context: Context) -> None:
    context.run("run", "--threshold", "r2>>0.3")
    context.record_state()


def step_behaves(mode: str, *extra: str) -> Callable[[Context], None]:
    """A user step that behaves as told (tests/support/faults.py RUNTIME_PIPELINE)."""

    def body(context: Context) -> None:
        context.run(
            "run", "--pipeline", "runtime.py:runtime", "--arg", f"modes={json.dumps(mode.split('+'))}",
            *extra,
        )  # fmt: skip
        context.record_state()
        left = processes_of(context.project)
        context.result.message += f" [processes left: {len(left)}]"

    return body


def cli_signalled(signum: int) -> Callable[[Context], None]:
    """The CLI ends by ``signum`` while two tasks work; then what is left, and after the next
    command (reconcile) which runs are still RUNNING."""

    def body(context: Context) -> None:
        process = context.start(
            "run", "--pipeline", "runtime.py:runtime", "--arg", 'modes=["sleep60", "sleep60"]',
        )  # fmt: skip
        context.wait_for_step("behave")
        time.sleep(2)  # both tasks at work
        os.kill(process.pid, signum)  # the CLI only: a job runner's kill, an OOM kill of the shell
        signalled = time.monotonic()
        context.verdict(signalled)
        deadline = signalled + 30
        while processes_of(context.project) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = len(processes_of(context.project))
        gone = time.monotonic() - signalled
        context.command("runs", "reconcile")
        context.record_state()
        context.result.message = (
            f"{context.result.message} [processes left: {left}, all gone after {gone:.1f}s]"
        )

    return body


def readme_loop(times: int) -> Callable[[Context], None]:
    """The README's loop: the default pipeline again and again; every run must end."""

    def body(context: Context) -> None:
        began = time.monotonic()
        codes = []
        for _ in range(times):
            context.run("run")
            codes.append(context.result.code)
            if context.result.code != 0:
                break
        context.result.seconds = time.monotonic() - began
        context.record_state()
        out = " ".join(context.result.stdout.split())  # the console wraps lines
        decided = out.partition("Decision: ")[2].partition(" Registered")[0]
        context.result.message = f"exits {codes}; last decision: {decided}"

    return body


def owned(body: Callable[[Context, Server], None]) -> Callable[[Context], None]:
    """The case gets a server of its own, stopped afterwards whatever happened."""

    def with_server(context: Context) -> None:
        server = Server(context.root / f"case-{context.case.number:02d}" / "mlflow").start()
        context.url = server.url
        try:
            body(context, server)
        finally:
            server.stop()

    return with_server


CASES = [
    Case(1, "tracking server SIGKILLed mid-run", 4, "owned", owned(server_killed)),
    Case(2, f"tracking server paused {PAUSE_S:.0f} s", 0, "owned", owned(server_paused)),
    Case(3, "artifact store failing", 4, "owned", owned(artifact_store_failing)),
    Case(4, "task killed by SIGKILL", 6, "owned", owned(task_killed)),
    Case(5, "Ctrl-C during train", 130, "shared", ctrl_c),
    Case(6, "header-only CSV", 3, "shared", bad_data(lambda: frame().head(0), "label")),
    Case(
        7,
        "a class with one row",
        3,
        "shared",
        bad_data(lambda: frame().assign(label=["a"] * 59 + ["rare"]), "label"),
    ),
    Case(
        8,
        "±inf in a feature",
        3,
        "shared",
        bad_data(lambda: frame().assign(x=[np.inf] + [0.5] * 59), "label"),
    ),
    Case(
        9,
        "continuous target, --task classification",
        3,
        "shared",
        bad_data(lambda: frame().assign(y=np.linspace(0, 1, 60)), "y", "--task", "classification"),
    ),
    Case(10, "nothing beats the baseline", 8, "shared", bad_data(noise, "y")),
    Case(11, "bad threshold r2>>0.3", 2, "shared", bad_threshold),
    # The task runtime.
    Case(
        12,
        "a step that never ends, --task-timeout 10",
        11,
        "shared",
        step_behaves("forever", "--task-timeout", "10"),
    ),
    Case(
        13,
        "a step stuck with signals blocked, --task-timeout 8",
        11,
        "shared",
        step_behaves("stuck", "--task-timeout", "8"),
    ),
    Case(14, "a step calls sys.exit(0)", 2, "shared", step_behaves("exit0")),
    Case(15, "a step calls os._exit(3)", 6, "shared", step_behaves("exit3")),
    Case(16, "a step segfaults (SIGSEGV)", 6, "shared", step_behaves("segv")),
    Case(17, "a step is SIGTERMed", 6, "shared", step_behaves("sigterm")),
    Case(18, "first failure beside a 60 s sibling", 6, "shared", step_behaves("fail+sleep60")),
    Case(19, "the CLI SIGKILLed mid-run", -9, "owned", owned(lambda c, s: cli_signalled(9)(c))),
    Case(20, "the CLI SIGTERMed mid-run", 143, "owned", owned(lambda c, s: cli_signalled(15)(c))),
    Case(21, "the README loop: run five times", 0, "owned", owned(lambda c, s: readme_loop(5)(c))),
]


def run_case(case: Case, root: Path, shared_url: str) -> Result:
    context = Context(case, root, url=shared_url)
    began = time.monotonic()
    say(f"  [{case.number:2d}] {case.name} ...")
    try:
        case.body(context)
    except Exception as error:  # the benchmark's own failure: reported, the others go on
        context.result.error = f"{type(error).__name__}: {error}"
        if context.process is not None and context.process.poll() is None:
            os.killpg(context.process.pid, signal.SIGKILL)
            context.process.communicate(timeout=30)
    result = context.result
    verdict = "hang" if result.hung else result.code
    say(f"  [{case.number:2d}] done in {time.monotonic() - began:.0f}s: exit {verdict}")
    return result


# --- the report ---------------------------------------------------------------------------------


def shorten(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(results: list[Result]) -> str:
    headers = ["#", "case", "exit (exp)", "verdict s", "RUNNING left", "versions", "message"]
    rows = []
    for result in results:
        code = "hang" if result.code is None else str(result.code)
        mark = "" if not result.wrong else " !"
        rows.append(
            [
                str(result.case.number),
                result.case.name,
                f"{code} ({result.case.expected}){mark}",
                f"{result.seconds:.1f}",
                result.running,
                result.versions,
                shorten(result.message or result.error),
            ]
        )
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def summary(results: list[Result]) -> str:
    hangs = sum(result.hung for result in results)
    tracebacks = sum(result.traceback for result in results)
    running = sum(result.running_final or 0 for result in results)
    unknown = sum(result.running_final is None for result in results)
    wrong = [result.case.number for result in results if result.wrong]
    errors = [result.case.number for result in results if result.error]
    text = (
        f"hangs (no verdict within {HANG_S:.0f} s): {hangs}; tracebacks: {tracebacks}; "
        f"runs left RUNNING after reconcile: {running}"
        + (f" ({unknown} case(s) unknown)" if unknown else "")
        + f"; wrong outcomes: {len(wrong)}"
        + (f" (case {', '.join(map(str, wrong))})" if wrong else "")
    )
    if errors:
        text += f"; benchmark errors: case {', '.join(map(str, errors))}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serial", action="store_true", help="one case at a time")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args()

    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    shared = Server(root / "shared-mlflow")
    try:
        shared.start()
        say(f"shared MLflow server {shared.url}; work in {root}")
        lanes = {
            lane: [case for case in CASES if case.lane == lane] for lane in ("owned", "shared")
        }

        def run_lane(cases: list[Case]) -> list[Result]:
            return [run_case(case, root, shared.url) for case in cases]

        if options.serial:
            results = run_lane(CASES)
        else:
            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = [pool.submit(run_lane, cases) for cases in lanes.values()]
                results = [result for future in futures for result in future.result()]
        results.sort(key=lambda result: result.case.number)
    finally:
        shared.stop()
        if not options.keep:
            shutil.rmtree(root, ignore_errors=True)

    say()
    say(table(results))
    say()
    say(summary(results))
    say(f"total {time.monotonic() - started:.0f} s" + (f"; kept {root}" if options.keep else ""))
    for result in results:
        if result.wrong or result.traceback or result.hung or result.error:
            say()
            say(f"--- case {result.case.number} ({result.case.name}): stderr ---")
            say(result.stderr.rstrip() or "(empty)")
            if result.error:
                say(f"benchmark error: {result.error}")
    bad = any(r.wrong or r.traceback or r.hung or r.error for r in results)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
