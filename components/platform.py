"""Cluster-side settings applied to every task (kfp-kubernetes): secrets and config as env."""

from __future__ import annotations

from kfp.dsl import PipelineTask


def configure_task(task: PipelineTask) -> PipelineTask:
    """Apply the cluster settings every task needs. Ignored by kfp.local."""
    return task
