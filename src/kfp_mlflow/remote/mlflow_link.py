"""The MLflow side of the KFP → MLflow link: which URL goes into a KFP run's description.

A KFP run's description is fixed at creation, before its run id exists, so it points at the
MLflow experiment (found by name through MLflow's REST API, best effort, a few seconds at most);
the runs filtered by ``kfp.pipeline_run_id`` are printed once the id is known. No mlflow import:
it costs seconds per process and this is one GET.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request

from kfp_mlflow.core.settings import Settings
from kfp_mlflow.remote.links import KFP_RUN_ID_TAG, mlflow_experiment_url

_LOOKUP_TIMEOUT_S = 3


def find_mlflow_experiment_id(settings: Settings, name: str) -> str | None:
    """The id of MLflow experiment ``name``, or None when it does not exist or cannot be asked."""
    base = settings.tracking_uri or settings.mlflow_ui_url
    if not base or not base.startswith(("http://", "https://")):
        return None
    query = urllib.parse.urlencode({"experiment_name": name})
    request = urllib.request.Request(
        f"{base.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?{query}"
    )
    if settings.tracking_token:
        request.add_header("Authorization", f"Bearer {settings.tracking_token.get_secret_value()}")
    elif settings.tracking_username and settings.tracking_password:
        pair = (
            f"{settings.tracking_username.get_secret_value()}:"
            f"{settings.tracking_password.get_secret_value()}"
        )
        request.add_header("Authorization", f"Basic {base64.b64encode(pair.encode()).decode()}")
    try:
        with urllib.request.urlopen(request, timeout=_LOOKUP_TIMEOUT_S) as response:
            experiment = json.load(response).get("experiment", {})
    except (OSError, ValueError, urllib.error.URLError):
        return None  # the link is a convenience: never fail a submission over it
    experiment_id = experiment.get("experiment_id")
    return str(experiment_id) if experiment_id else None


def run_description(ui_url: str | None, experiment_name: str, experiment_id: str | None) -> str:
    """The KFP run description: where its MLflow runs are."""
    where = f"MLflow experiment {experiment_name!r}"
    if ui_url and experiment_id:
        where += f": {mlflow_experiment_url(ui_url, experiment_id)}"
    elif ui_url:
        where += f" at {ui_url.rstrip('/')}"
    return f"{where} — runs tagged {KFP_RUN_ID_TAG} = this run's id."
