"""The default pipeline's work done the plain way, in one cold process: the baseline of
bench/pipeline_overhead.py. Not an example of ours: what a data scientist writes without us.

Reads the bundled diabetes data, splits it (80/20, seed 42), fits the default candidates one
after the other (the same estimators and hyperparameters; numbers scaled, text one-hot, as our
encoding does), logs a parent run and one child run per candidate with params, metrics and
``mlflow.sklearn.log_model`` (signature from an input example), then registers the best and sets
@champion. Talks to $MLFLOW_TRACKING_URI.

    python bench/_plain_tracked.py MODEL_NAME [--infer-requirements]

By default the requirements are given, as a careful user would (and as our train step does);
``--infer-requirements`` leaves them to MLflow, the plain way (it inspects the environment in a
subprocess per model).
"""

from __future__ import annotations

import os
import sys

import mlflow
import numpy as np
import sklearn
import skops.io
from mlflow import MlflowClient
from sklearn.datasets import load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CANDIDATES = {
    "linear": lambda: make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
    "random-forest": lambda: RandomForestRegressor(
        n_estimators=200, min_samples_leaf=5, max_features=0.5, random_state=42
    ),
    "gradient-boosting-shallow": lambda: HistGradientBoostingRegressor(
        learning_rate=0.05,
        max_iter=200,
        max_depth=3,
        min_samples_leaf=20,
        l2_regularization=1.0,
        random_state=42,
    ),
    "gradient-boosting": lambda: HistGradientBoostingRegressor(
        learning_rate=0.05, max_iter=200, random_state=42
    ),
}


def main() -> None:
    model_name = sys.argv[1] if len(sys.argv) > 1 else "plain-model"
    infer = "--infer-requirements" in sys.argv
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "plain"))
    data = load_diabetes(as_frame=True).frame
    features, target = data.drop(columns="target"), data["target"]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.2, random_state=42
    )
    requirements = [f"scikit-learn=={sklearn.__version__}"]
    best: tuple[float, str] | None = None
    with mlflow.start_run(run_name="plain-pipeline"):
        for name, build in CANDIDATES.items():
            with mlflow.start_run(run_name=name, nested=True) as run:
                model = build().fit(x_train, y_train)
                predicted = model.predict(x_test)
                rmse = float(np.sqrt(mean_squared_error(y_test, predicted)))
                mlflow.log_params(
                    model.get_params(deep=False) if name != "linear" else {"alpha": 1.0}
                )
                mlflow.log_metrics(
                    {
                        "rmse": rmse,
                        "mae": float(mean_absolute_error(y_test, predicted)),
                        "r2": float(r2_score(y_test, predicted)),
                    }
                )
                # MLflow saves with skops, which trusts no tree: a user trusts their own model.
                trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    input_example=x_test.head(5),
                    pip_requirements=None if infer else requirements,
                    skops_trusted_types=trusted,
                )
                if best is None or rmse < best[0]:
                    best = (rmse, run.info.run_id)
    assert best is not None
    version = mlflow.register_model(f"runs:/{best[1]}/model", model_name)
    MlflowClient().set_registered_model_alias(model_name, "champion", version.version)


if __name__ == "__main__":
    main()
