"""Micro-batch prediction: score each new file in a directory once, with a durable ledger.

``kfp-mlflow predict --watch DIR`` is Spark's ``readStream`` with ``maxFilesPerTrigger`` for a
registered model, in-process (no pipeline per micro-batch): every trigger takes up to N files
not yet in the ledger, oldest first (modification time, then name), resolves ``@alias`` once
for the micro-batch, scores each file with :func:`kfp_mlflow.steps.batch_predict.score_version`
into one predictions file, and appends one ledger line per file.

Exactly once across crashes: a predictions file is written beside its final name and moved
into place when complete, and only then is the ledger line appended (one ``write`` of one line,
then ``fsync``). A crash before the line is written leaves the input unrecorded, so the next
start scores it again and replaces the same output file (same name, same bytes for the same
version); a crash in the middle of the line leaves a torn last line, which the next start drops
(rewriting the ledger atomically). No input is skipped, none is recorded twice.

Producers must move files into the directory when complete (write ``.name`` or ``_name``, then
rename): names starting with ``.`` or ``_`` are ignored, as Spark and pyarrow do.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kfp_mlflow.core.exceptions import ConfigError, KfpMlflowError
from kfp_mlflow.core.settings import Settings
from kfp_mlflow.core.tag_schema import TAG_SCORED_DATA, TAG_SCORED_FROM
from kfp_mlflow.serving.scoring import (
    DEFAULT_CHUNK_ROWS,
    LoadedModel,
    ResolvedModel,
    load_model,
    resolve_model,
)
from kfp_mlflow.tracking.ledger import forget, reconcile, remember
from kfp_mlflow.tracking.runs import experiment_id_for, log_values, mlflow_errors, tracking_client

LEDGER_NAME = "_ledger.jsonl"
OUTPUT_SUFFIX = ".predictions.parquet"
_DATA_SUFFIXES = (".parquet", ".pq", ".csv", ".gz", ".zst")


@dataclass(frozen=True)
class LedgerEntry:
    input: str  # file name, relative to the watched directory
    size: int
    mtime_ns: int
    status: str  # scored or failed
    output: str | None = None
    model_uri: str | None = None
    rows: int = 0
    digest: str | None = None
    error: str | None = None
    at: str = ""


class Ledger:
    """What has been scored, one JSON line per input file, appended durably."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, LedgerEntry] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        text = self.path.read_text()
        lines = text.splitlines(keepends=True)
        good = []
        for line in lines:
            try:
                entry = LedgerEntry(**json.loads(line))
            except (ValueError, TypeError):
                break  # a torn last line: that input was not recorded, so it is scored again
            if not line.endswith("\n"):
                break
            good.append(line)
            self.entries[entry.input] = entry
        if len(good) != len(lines):
            partial = self.path.with_name(f".{self.path.name}.tmp")
            partial.write_text("".join(good))
            with partial.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(partial, self.path)

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def append(self, entry: LedgerEntry) -> None:
        line = (json.dumps(asdict(entry), sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries[entry.input] = entry


def pending(directory: Path, ledger: Ledger) -> list[Path]:
    """Data files in ``directory`` not in the ledger, in arrival order (mtime, then name)."""
    found = []
    for path in directory.iterdir():
        if path.name.startswith((".", "_")) or not path.is_file():
            continue
        if not path.name.lower().endswith(_DATA_SUFFIXES) or path.name in ledger:
            continue
        found.append((path.stat().st_mtime_ns, path.name, path))
    return [path for _, _, path in sorted(found)]


def output_for(output_dir: Path, source: Path) -> Path:
    name = source.name
    for suffix in (".gz", ".zst", ".parquet", ".pq", ".csv"):
        name = name.removesuffix(suffix)
    return output_dir / f"{name}{OUTPUT_SUFFIX}"


@dataclass
class WatchOptions:
    model_name: str
    alias: str = ""
    version: str = ""
    max_files_per_trigger: int = 1
    trigger_seconds: float = 1.0
    until_idle: bool = False
    key_columns: tuple[str, ...] = ()
    chunk_rows: int = DEFAULT_CHUNK_ROWS


def watch(
    directory: Path,
    output_dir: Path,
    options: WatchOptions,
    settings: Settings,
    say: Callable[[str], None] = print,
) -> int:
    """Score new files until interrupted (or, ``until_idle``, until none is waiting).
    Returns the number of files scored in this session."""
    if not directory.is_dir():
        raise ConfigError(f"--watch: {directory} is not a directory")
    if options.max_files_per_trigger < 1:
        raise ConfigError("--max-files-per-trigger: must be at least 1")
    output_dir.mkdir(parents=True, exist_ok=True)
    stream = _Stream(directory, output_dir, options, settings, say)
    status = "FINISHED"
    try:
        while True:
            started = time.monotonic()
            batch = pending(directory, stream.ledger)[: options.max_files_per_trigger]
            if batch:
                stream.micro_batch(batch)
            elif options.until_idle:
                break
            if not options.until_idle:
                time.sleep(max(0.0, options.trigger_seconds - (time.monotonic() - started)))
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        stream.close(status)
    return stream.scored


class _Stream:
    """The state of one `--watch` session: ledger, MLflow run, current model."""

    def __init__(
        self,
        directory: Path,
        output_dir: Path,
        options: WatchOptions,
        settings: Settings,
        say: Callable[[str], None],
    ) -> None:
        self.output_dir, self.options, self.settings, self.say = output_dir, options, settings, say
        self.ledger = Ledger(output_dir / LEDGER_NAME)
        self.client = tracking_client(settings)
        # A session killed outright (SIGKILL, OOM) cannot end its run: an earlier one's is
        # closed now, and this one's is on record for the next command (or `runs reconcile`).
        reconcile(settings, str(settings.tracking_uri))
        self.run_id = _open_run(self.client, settings, directory, options)
        self.entry = f"predict-watch-{self.run_id}"
        remember(
            settings, self.entry, str(settings.tracking_uri), settings.experiment_name,
            run_ids=(self.run_id,),
        )  # fmt: skip
        self.current: tuple[ResolvedModel, LoadedModel] | None = None
        self.scored = self.trigger = 0

    def micro_batch(self, batch: list[Path]) -> None:
        self.trigger += 1
        # Resolved once per micro-batch: a promotion takes effect at the next one.
        resolved = resolve_model(
            self.client, self.options.model_name, version=self.options.version,
            alias=self.options.alias,
        )  # fmt: skip
        if self.current is None or self.current[0].version != resolved.version:
            if self.current is not None:
                self.say(
                    f"{resolved.reference} moved: v{self.current[0].version} → "
                    f"v{resolved.version}; micro-batch {self.trigger} and later use "
                    f"v{resolved.version}"
                )
            self.current = (resolved, load_model(resolved.uri, self.settings.tracking_uri))
            self.say(f"scoring with {resolved.uri} (from {resolved.reference})")
        for source in batch:
            self._score(source, *self.current)

    def _score(self, source: Path, resolved: ResolvedModel, model: LoadedModel) -> None:
        from kfp_mlflow.steps.batch_predict import score_version

        stat = source.stat()
        target = output_for(self.output_dir, source)
        try:
            result = score_version(
                resolved,
                model,
                data=str(source),
                output=target,
                key_columns=list(self.options.key_columns),
                chunk_rows=self.options.chunk_rows,
                run_id=self.run_id,
                settings=self.settings,
            )
        except KfpMlflowError as error:
            # Recorded, not retried forever: a bad file is named once and the stream goes on.
            self.ledger.append(_entry(source, stat, "failed", error=str(error)))
            self.say(f"failed {source.name}: {error}")
            return
        record = result.predictions
        self.ledger.append(
            _entry(source, stat, "scored", output=target.name, model_uri=record.model_uri,
                   rows=record.rows, digest=record.digest)
        )  # fmt: skip
        self.scored += 1
        self.say(f"scored {source.name}: {record.rows} rows by {record.model_uri} → {target.name}")
        with mlflow_errors("log a micro-batch"):
            log_values(
                self.client, self.run_id, metrics={"rows": record.rows, "files": self.scored}
            )

    def close(self, status: str) -> None:
        try:
            with mlflow_errors("end the watch run"):
                self.client.set_terminated(self.run_id, status)
        except KfpMlflowError:
            return  # the scoring outcome stands; the ledger entry closes the run later
        forget(self.settings, self.entry)


def _entry(source: Path, stat: os.stat_result, status: str, **fields: Any) -> LedgerEntry:
    return LedgerEntry(
        input=source.name,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        status=status,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        **fields,
    )


def _open_run(client: Any, settings: Settings, directory: Path, options: WatchOptions) -> str:
    experiment_id = experiment_id_for(client, settings.experiment_name, settings)
    reference = (
        f"models:/{options.model_name}/{options.version}"
        if options.version
        else f"models:/{options.model_name}@{options.alias or 'champion'}"
    )
    with mlflow_errors("open the watch run"):
        run = client.create_run(
            experiment_id,
            run_name="predict-watch",
            tags={TAG_SCORED_FROM: reference, TAG_SCORED_DATA: str(directory),
                  "kfp_mlflow.step": "predict-watch"},
        )  # fmt: skip
    return str(run.info.run_id)
