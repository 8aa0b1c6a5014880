"""Data by content: the exact rows a pipeline read, kept immutable in MLflow's artifact store.

``preprocess`` stores the frame it read as Parquet under the run that first saw that content
(found again by its digest, so identical data is stored once) and records the snapshot's
``runs:/<run>/snapshot/data.parquet`` URI on its runs and, through the contracts, on the
registered version. A later change to the source cannot change what a version was trained on,
and ``kfp-mlflow reproduce`` reads the snapshot back (``read_dataset`` accepts ``runs:/`` URIs).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kfp_mlflow.core.tag_schema import TAG_SNAPSHOT_DIGEST, TAG_SNAPSHOT_URI
from kfp_mlflow.tracking.runs import TaskRun, mlflow_errors

if TYPE_CHECKING:
    import pandas as pd

ARTIFACT_PATH = "snapshot"
FILE_NAME = "data.parquet"


def store_snapshot(run: TaskRun, frame: pd.DataFrame, digest: str) -> str:
    """The snapshot URI of ``frame`` (content ``digest``): reused if stored before."""
    with mlflow_errors("find a stored snapshot"):
        stored = run.client.search_runs(
            [run.experiment_id],
            filter_string=f"tags.`{TAG_SNAPSHOT_DIGEST}` = '{digest}'",
            max_results=1,
        )
    if stored:
        uri = snapshot_uri(str(stored[0].info.run_id))
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / FILE_NAME
            frame.to_parquet(path, index=False)
            run.log_artifact(str(path), ARTIFACT_PATH)
        run.set_tags({TAG_SNAPSHOT_DIGEST: digest})
        uri = snapshot_uri(run.run_id)
    run.set_tags({TAG_SNAPSHOT_URI: uri})
    return uri


HELD_OUT_PATH = "held_out"


def store_held_out(run: TaskRun, path: str, digest: str) -> str:
    """The ``runs:/`` URI of the test split at ``path`` (content ``digest``), kept under the
    pipeline's parent run so ``register`` can meet @champion on exactly these rows.

    Stored once per content and pipeline run: the evaluations of one split find it there (two
    racing ones may both upload the same bytes, which is harmless). A split written as a
    directory of part files is stored as the one Parquet file the rows make.
    """
    import shutil

    name = f"{digest[:32]}.parquet"
    uri = f"runs:/{run.parent_run_id}/{HELD_OUT_PATH}/{name}"
    with mlflow_errors("look for the stored test rows"):
        stored = run.client.list_artifacts(run.parent_run_id, HELD_OUT_PATH)
    if any(Path(item.path).name == name for item in stored):
        return uri
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / name
        if Path(path).is_dir():
            import pandas as pd

            pd.read_parquet(path).to_parquet(copy, index=False)
        else:
            shutil.copyfile(path, copy)
        with mlflow_errors("store the test rows"):
            run.client.log_artifact(run.parent_run_id, str(copy), HELD_OUT_PATH)
    return uri


def snapshot_uri(run_id: str) -> str:
    return f"runs:/{run_id}/{ARTIFACT_PATH}/{FILE_NAME}"


def download(uri: str, tracking_uri: str | None, into: Path) -> Path:
    """Fetch an MLflow artifact (``runs:/...``, ``models:/...``) into ``into``."""
    import mlflow.artifacts

    with mlflow_errors(f"download {uri}"):
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(into), tracking_uri=tracking_uri
            )
        )
