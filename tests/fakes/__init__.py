"""In-process fakes of the services kfp-mlflow talks to (no cluster on CI machines)."""
