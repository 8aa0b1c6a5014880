"""Local runs' open MLflow runs, remembered on disk so that nothing stays RUNNING for ever.

A local pipeline run registers its KFP run id here as soon as its first task reports, with the
runner's process id, and removes it once its MLflow runs are closed. A process that owns MLflow
runs of its own (``predict --watch``) registers their ids instead. If the runner dies first
(killed, machine rebooted) or the tracking server was down when it ended, the entry stays; the
next kfp-mlflow command against that server — or ``kfp-mlflow runs reconcile`` — closes the runs
of every entry whose process is provably gone. A live process's runs are never touched.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kfp_mlflow.core.exceptions import TrackingError
from kfp_mlflow.core.settings import Settings

FOLDER = "open-runs"


@dataclass(frozen=True)
class Entry:
    kfp_run_id: str
    tracking_uri: str
    experiment: str
    pid: int
    started: float
    #: MLflow runs owned directly (not found by KFP run id), e.g. a ``predict --watch`` session.
    run_ids: tuple[str, ...] = ()
    #: Other processes whose life keeps the runs open (a local run's driver and supervisor).
    pids: tuple[int, ...] = ()

    def alive(self) -> bool:
        return any(alive(pid) for pid in (self.pid, *self.pids))


@dataclass(frozen=True)
class Reconciled:
    kfp_run_id: str
    runs_closed: int


def _folder(settings: Settings) -> Path:
    return settings.work_dir / FOLDER


def remember(
    settings: Settings,
    kfp_run_id: str,
    tracking_uri: str,
    experiment: str,
    run_ids: tuple[str, ...] = (),
    pids: tuple[int, ...] = (),
) -> None:
    """Record that this process (and ``pids``) has runs open under ``kfp_run_id`` (or
    ``run_ids``)."""
    folder = _folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    entry = Entry(kfp_run_id, tracking_uri, experiment, os.getpid(), time.time(), run_ids, pids)
    (folder / f"{kfp_run_id}.json").write_text(json.dumps(asdict(entry)))


def forget(settings: Settings, kfp_run_id: str) -> None:
    (_folder(settings) / f"{kfp_run_id}.json").unlink(missing_ok=True)


def entries(settings: Settings) -> list[Entry]:
    found = []
    for path in sorted(_folder(settings).glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            raw["run_ids"] = tuple(raw.get("run_ids", ()))
            raw["pids"] = tuple(raw.get("pids", ()))
            found.append(Entry(**raw))
        except (OSError, ValueError, TypeError):
            continue
    return found


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (this machine's ledger: same process namespace).

    A zombie is dead: a killed runner's children are reparented to a PID 1 that may never reap
    them, and ``kill(pid, 0)`` still succeeds on an unreaped process.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: trust kill(0)
    return state != "Z"


def reconcile(settings: Settings, tracking_uri: str) -> list[Reconciled]:
    """Close (FAILED) the open runs of every dead local run recorded for ``tracking_uri``."""
    from kfp_mlflow.tracking.runs import end_open_runs, end_runs

    done = []
    for entry in entries(settings):
        if entry.tracking_uri != tracking_uri or entry.alive():
            continue
        scoped = settings.model_copy(
            update={"experiment_name": entry.experiment, "tracking_uri": tracking_uri}
        )
        reason = f"reconciled: local process {entry.pid} ended without closing its runs"
        try:
            closed = (
                end_runs(set(entry.run_ids), "FAILED", scoped, reason=reason)
                if entry.run_ids
                else end_open_runs({entry.kfp_run_id}, "FAILED", scoped, reason=reason)
            )
        except TrackingError:
            continue  # the server is still unreachable: keep the entry for next time
        forget(settings, entry.kfp_run_id)
        done.append(Reconciled(entry.kfp_run_id, len(closed)))
    return done
