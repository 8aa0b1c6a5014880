"""Pipeline graphs built from the kfp-mlflow components."""
