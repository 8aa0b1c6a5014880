"""Compile the training pipeline to KFP IR YAML (what the Kubeflow UI and `kfp.Client` accept)."""

from __future__ import annotations

from pathlib import Path

from kfp_mlflow.settings import Settings, get_settings

# The committed golden file; `make golden` (or `kfp-mlflow compile`) rewrites it.
GOLDEN_PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "compiled" / "training.yaml"


def compile_pipeline(output: Path, settings: Settings | None = None) -> Path:
    """Write the training pipeline as IR YAML to ``output`` and return the path."""
    from kfp import compiler

    from kfp_mlflow.pipelines.training import build_training_pipeline

    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_training_pipeline(settings or get_settings()), str(output))
    return output
