"""The import path under which versions registered before the package was layered name our
transformer (skops records ``kfp_mlflow.features.DatetimeFeatures`` in the saved model and in
its MLmodel's trusted types): kept so that those versions still load, e.g. as @champion in a
head-to-head. New models name ``kfp_mlflow.data.features``."""

from kfp_mlflow.data.features import DatetimeFeatures

__all__ = ["DatetimeFeatures"]
