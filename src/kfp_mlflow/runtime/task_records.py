"""Status records: what each task of a local run tells the runner, as files, not log lines.

The task executor (:mod:`kfp_mlflow.runtime.executor`) writes one JSON record per task execution
into
the directory the runner names (``KFP_MLFLOW_STATUS_DIR``): RUNNING when it starts, then
SUCCEEDED with its outputs' metadata, or FAILED with the error's class, message, hint and exit
code. The runner polls the directory for progress and reads outcomes from it, so nothing depends
on the wording of kfp.local's log.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RUNNING, SUCCEEDED, FAILED = "RUNNING", "SUCCEEDED", "FAILED"


@dataclass
class TaskError:
    error_class: str
    message: str
    hint: str | None
    exit_code: int


@dataclass
class TaskRecord:
    """One execution of one task."""

    task: str
    step: str
    kfp_run_id: str
    state: str = RUNNING
    label: str = ""
    started: float = field(default_factory=time.time)
    ended: float | None = None
    pid: int = field(default_factory=os.getpid)
    mlflow_run_id: str | None = None
    error: TaskError | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    #: Seconds the task may run (its deadline), when it has one.
    timeout: float | None = None
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def seconds(self) -> float:
        return (self.ended or time.time()) - self.started

    def save(self, directory: Path) -> None:
        """Write atomically: a reader never sees half a record."""
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{self.record_id}.json"
        partial = directory / f".{self.record_id}.tmp"
        partial.write_text(json.dumps(asdict(self), default=str))
        os.replace(partial, final)

    @classmethod
    def load(cls, path: Path) -> TaskRecord:
        raw = json.loads(path.read_text())
        error = raw.pop("error", None)
        return cls(**raw, error=TaskError(**error) if error else None)


def read_records(directory: Path) -> list[TaskRecord]:
    """Every record in ``directory``, oldest start first."""
    records = []
    for path in directory.glob("*.json") if directory.is_dir() else ():
        try:
            records.append(TaskRecord.load(path))
        except (OSError, ValueError, TypeError):
            continue  # replaced between listing and reading; the next poll sees it
    return sorted(records, key=lambda record: record.started)


STOP_FILE = "STOP"


@dataclass(frozen=True)
class Stop:
    """Written by the runner when a task failed: tasks not yet started do no work."""

    task: str
    exit_code: int

    def save(self, directory: Path) -> None:
        partial = directory / f".{STOP_FILE}.tmp"
        partial.write_text(json.dumps(asdict(self)))
        os.replace(partial, directory / STOP_FILE)

    @classmethod
    def load(cls, directory: Path) -> Stop | None:
        try:
            return cls(**json.loads((directory / STOP_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None
