"""Every MLflow tag name kfp-mlflow writes: a public contract, kept in this one module.

Dashboards, search filters (``tags.`kfp.pipeline_run_id` = '...'``) and other tools rely on
these names; changing one is a breaking change. docs/extending.md explains each.
"""

from __future__ import annotations

# KFP's own tag names, as its MLflow integration writes them, so both hierarchies read alike.
TAG_KFP_RUN_ID = "kfp.pipeline_run_id"
TAG_KFP_RUN_NAME = "kfp.pipeline_run_name"
TAG_KFP_RUN_URL = "kfp.pipeline_run_url"
TAG_KFP_TASK_NAME = "kfp.task_name"
# MLflow's own.
TAG_PARENT = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
TAG_GIT_COMMIT = "mlflow.source.git.commit"

# Runs: the hierarchy and each task's identity.
TAG_ROLE = "kfp_mlflow.role"  # "pipeline" (parent run) or "task" (child run)
ROLE_PIPELINE = "pipeline"
ROLE_TASK = "task"
TAG_STEP = "kfp_mlflow.step"  # the component's step name (its function name by default)
TAG_ERROR = "kfp_mlflow.error"  # "<ErrorClass>: <message>" of a failed task (also on the parent)
TAG_FINAL_STATE = "kfp_mlflow.final_state"  # KFP's final state of the pipeline run (parent)
TAG_RUNNER = "kfp_mlflow.runner"  # "local" or "cluster"
TAG_IMAGE = "kfp_mlflow.image"  # component image, or "local-process"
TAG_IMAGE_DIGEST = "kfp_mlflow.image_digest"  # sha256 id of the image the task ran in
VERSION_PREFIX = "kfp_mlflow.version."  # + package name: its installed version

# What a run worked on.
TAG_CANDIDATE = "kfp_mlflow.candidate"
TAG_FAMILY = "kfp_mlflow.family"
TAG_MODEL_ID = "kfp_mlflow.model_id"  # the MLflow LoggedModel a train task produced
# On a train run: the types skops will trust when loading its model (all reviewed), comma-joined.
TAG_SKOPS_TRUSTED_TYPES = "kfp_mlflow.skops_trusted_types"
TAG_TRAIN_RUN_ID = "kfp_mlflow.train_run_id"
TAG_EVALUATE_RUN_ID = "kfp_mlflow.evaluate_run_id"
TAG_PARENT_RUN_ID = "kfp_mlflow.parent_run_id"
TAG_DATASET_DIGEST = "kfp_mlflow.dataset_digest"
# The exact test rows a candidate was scored on (evaluate runs, registered versions): their
# content digest and where they are kept (runs:/<parent run>/held_out/<digest>.parquet).
TAG_TEST_DIGEST = "kfp_mlflow.test_digest"
TAG_TEST_ROWS_URI = "kfp_mlflow.test_rows_uri"
TAG_TASK_TYPE = "kfp_mlflow.task_type"
TAG_DATA_WARNINGS = "kfp_mlflow.data_warnings"  # columns preprocess dropped, and why
TAG_SEED = "kfp_mlflow.seed"
TAG_SNAPSHOT_URI = "kfp_mlflow.snapshot_uri"  # runs:/... of the exact data the run read
TAG_SNAPSHOT_DIGEST = "kfp_mlflow.snapshot_digest"  # on the run that stored that snapshot
TAG_RECIPE = "kfp_mlflow.recipe"  # JSON: how to rebuild a registered version (reproduce)
TAG_REPRODUCES = "kfp_mlflow.reproduces"  # on a reproduce run: models:/<name>/<version>
TAG_LOCK_SHA256 = "kfp_mlflow.lock_sha256"  # hash of the image's dependency lock, when known
PARAM_PREFIX = "kfp_mlflow.param."  # + hyperparameter name (on registered versions)

# The register step's decision (on its run and the parent run).
TAG_DECISION = "kfp_mlflow.decision"
TAG_WINNER = "kfp_mlflow.winner"
TAG_REGISTERED_VERSION = "kfp_mlflow.registered_version"
TAG_PROMOTED = "kfp_mlflow.promoted"  # also on the registered version
# On a registered version: "pending" while its register step decides, then "decided"; a version
# whose pipeline run ended before deciding is marked "interrupted" (never promoted automatically).
TAG_DECISION_STATE = "kfp_mlflow.decision_state"
TAG_CHAMPION_VERSION = "kfp_mlflow.champion_version"

# Registered model versions.
TAG_REGISTRATION_KEY = "kfp_mlflow.registration_key"  # "<kfp run id>:<candidate>"
TAG_GATE = "kfp_mlflow.gate"  # "passed"
TAG_DEMOTED = "kfp_mlflow.demoted"  # "true": never chosen as @champion again
TAG_PRIMARY_METRIC = "kfp_mlflow.primary_metric"
TAG_DIRECTION = "kfp_mlflow.direction"
# + the champion's version number, on a challenger version: JSON of its head-to-head with that
# champion on the challenger's test rows (kfp_mlflow.registry.head_to_head.HeadToHead)
TAG_HEAD_TO_HEAD_PREFIX = "kfp_mlflow.h2h.v"
METRIC_PREFIX = "kfp_mlflow.metric."
# Registered models: the last manual decision, sticky against automatic promotion.
TAG_PINNED = "kfp_mlflow.pinned_champion"  # the version a person chose (rollback / promote)
TAG_FLOOR = "kfp_mlflow.manual_floor"  # only versions above this number may displace it
# Audit runs (one per alias move, experiment `<experiment>-audit`).
TAG_AUDIT_MODEL = "kfp_mlflow.audit.model"  # + metric name: the value the gate and promotion saw

# MLflow dataset inputs.
INPUT_TAG_DIGEST = "kfp_mlflow.digest"

# Batch and streaming prediction (batch_predict, `kfp-mlflow predict`): on the scoring run.
TAG_SCORED_MODEL = "kfp_mlflow.scored_model"  # models:/<name>/<version> that scored the data
TAG_SCORED_FROM = "kfp_mlflow.scored_from"  # how it was named: models:/<name>@<alias> or /<v>
TAG_SCORED_DATA = "kfp_mlflow.scored_data"  # URI of the scored dataset
TAG_DRIFT = "kfp_mlflow.drift"  # "true", "false", or "unavailable" (no training reference)
TAG_DRIFTED = "kfp_mlflow.drifted"  # columns whose PSI is above the threshold
