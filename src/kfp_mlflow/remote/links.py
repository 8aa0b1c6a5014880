"""URLs that link a KFP run and its MLflow runs both ways. Pure functions: no I/O, no imports.

The MLflow parent run is tagged with :func:`kfp_run_url` (by the tracking code, which imports
it from here); the KFP run's description carries :func:`mlflow_experiment_url` or
:func:`mlflow_runs_search_url`.
"""

from __future__ import annotations

from urllib.parse import quote

from kfp_mlflow.core.tag_schema import TAG_KFP_RUN_ID

# The tag KFP's own MLflow integration writes on the parent run; we search by the same key.
KFP_RUN_ID_TAG = TAG_KFP_RUN_ID


def kfp_run_url(ui_url: str, run_id: str) -> str:
    """The KFP UI page of a run: ``<ui>/#/runs/details/<run_id>``."""
    return f"{ui_url.rstrip('/')}/#/runs/details/{run_id}"


def kfp_schedule_url(ui_url: str, recurring_run_id: str) -> str:
    """The KFP UI page of a recurring run."""
    return f"{ui_url.rstrip('/')}/#/recurringrun/details/{recurring_run_id}"


def mlflow_experiment_url(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI page of an experiment."""
    return f"{ui_url.rstrip('/')}/#/experiments/{quote(experiment_id, safe='')}"


def mlflow_runs_search_url(ui_url: str, experiment_id: str, kfp_run_id: str) -> str:
    """The MLflow UI runs of an experiment filtered to those tagged with one KFP run id."""
    search = f"tags.`{KFP_RUN_ID_TAG}` = '{kfp_run_id}'"
    return f"{mlflow_experiment_url(ui_url, experiment_id)}?searchFilter={quote(search, safe='')}"
