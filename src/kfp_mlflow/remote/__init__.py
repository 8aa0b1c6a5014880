"""Talk to a running Kubeflow Pipelines: submit, schedule and follow runs."""
