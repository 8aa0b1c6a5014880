"""The Spark ML backend: families trained as a ``pyspark.ml.Pipeline`` on a local SparkSession.

The pipeline is the one of Learning Spark (2nd ed., ch. 11): StringIndexer for text columns
(``handleInvalid="keep"``: unseen and missing categories get their own index), an Imputer for
numbers, VectorAssembler (``handleInvalid="keep"``) and the estimator. For classification the
label is indexed before fitting and an IndexToString stage maps predictions back to the labels,
so the saved model predicts labels as the scikit-learn families do. It is saved with the
``mlflow.spark`` flavor (Spark's own format, no pickle) and loads as a pyfunc model.

The pyfunc model of ``mlflow.spark`` returns predictions only. :func:`load_spark_scorer` wraps
it for ``evaluate`` with ``predict_proba`` read from the model's ``probability`` column and
``classes_`` from the IndexToString stage, so roc_auc and log_loss of a Spark candidate are
computed exactly as for the others and register compares all candidates on the same metric.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from kfp_mlflow.core.exceptions import ConfigError
from kfp_mlflow.models.families import Family

if TYPE_CHECKING:
    import pandas as pd

    from kfp_mlflow.core.settings import Settings

_FEATURES = "__features__"
_LABEL = "__label__"
_LABEL_INDEX = "__label_index__"
_PREDICTION_INDEX = "__prediction_index__"
# Column names the backend wires itself; a candidate may not set them.
_WIRED = {"featuresCol", "labelCol", "predictionCol", "probabilityCol", "rawPredictionCol"}
_MIN_BINS = 32


def local_session(settings: Settings | None = None) -> Any:
    """The task's SparkSession: local, two cores (the machine's), no UI, quiet."""
    from pyspark.sql import SparkSession

    from kfp_mlflow.core.settings import get_settings, spark_local_ip

    settings = settings or get_settings()
    spark_local_ip()
    # py4j logs at INFO from finalizers, possibly after stdout was closed (kfp.local redirects).
    logging.getLogger("py4j").setLevel(logging.WARNING)
    builder: Any = SparkSession.builder
    session = (
        builder.master(settings.spark_master)
        .appName("kfp-mlflow")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.showConsoleProgress", "false")
        # Measured: 20 s → 14 s under load with the default options (Settings.spark_java_options).
        .config("spark.driver.extraJavaOptions", settings.spark_java_options)
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _text_columns(features: pd.DataFrame) -> list[str]:
    import pandas as pd

    return [
        c
        for c in features.columns
        if not pd.api.types.is_numeric_dtype(features[c])
        and not pd.api.types.is_bool_dtype(features[c])
    ]


def to_spark(session: Any, frame: pd.DataFrame) -> Any:
    """A Spark DataFrame with a declared schema (inference fails on all-missing columns)."""
    import pandas as pd
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    fields, data = [], {}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            fields.append(StructField(str(column), BooleanType(), True))
            data[column] = series
        elif pd.api.types.is_numeric_dtype(series):
            fields.append(StructField(str(column), DoubleType(), True))
            data[column] = series.astype("float64")
        else:
            fields.append(StructField(str(column), StringType(), True))
            data[column] = series.astype("object").where(series.notna(), None)
    return session.createDataFrame(pd.DataFrame(data), schema=StructType(fields))


class SparkBackend:
    """Fits and saves the Spark ML families (see the module docstring)."""

    def accepted_params(self, family: Family, task: str) -> set[str]:
        # The estimators' keyword-only constructors list their params; reading the signature
        # needs no JVM, so search spaces are checked before any Spark starts.
        estimator: Any = family.estimator_class(task)
        signature = inspect.signature(estimator.__init__)
        return {name for name in signature.parameters if name != "self"} - _WIRED

    def check(self, family: Family, params: dict[str, Any], task: str, seed: int) -> None:
        for name, value in params.items():
            if isinstance(value, (dict, list)):
                raise ConfigError(f"candidates: family {family.name!r}: {name}={value!r}")

    def train(
        self,
        family: Family,
        name: str,
        params: dict[str, Any],
        task: str,
        seed: int,
        features: Any,
        labels: Any,
    ) -> Any:
        from pyspark.ml import Pipeline
        from pyspark.ml.feature import Imputer, IndexToString, StringIndexer, VectorAssembler

        session = local_session()
        text = _text_columns(features)
        rest = [c for c in features.columns if c not in text]
        numeric = [c for c in rest if str(features[c].dtype) != "bool"]
        frame = to_spark(session, features.assign(**{_LABEL: labels}))
        stages: list[Any] = []
        inputs = [c for c in rest if c not in numeric]
        if text:
            stages.append(
                StringIndexer(
                    inputCols=text, outputCols=[f"{c}__index" for c in text], handleInvalid="keep"
                )
            )
            inputs += [f"{c}__index" for c in text]
        if numeric:
            stages.append(
                Imputer(
                    inputCols=numeric,
                    outputCols=[f"{c}__imputed" for c in numeric],
                    strategy="median",
                )
            )
            inputs += [f"{c}__imputed" for c in numeric]
        stages.append(VectorAssembler(inputCols=inputs, outputCol=_FEATURES, handleInvalid="keep"))
        estimator = family.estimator_class(task)(featuresCol=_FEATURES)
        accepted = self.accepted_params(family, task)
        if "maxBins" in accepted and "maxBins" not in params and text:
            # Trees treat indexed text as categorical and need a bin per category (plus the
            # "keep" bucket): the book sets maxBins=40 by hand for its data.
            widest = max(int(features[c].nunique()) for c in text) + 2
            params = {**params, "maxBins": max(_MIN_BINS, widest)}
        if task == "classification":
            indexer = StringIndexer(inputCol=_LABEL, outputCol=_LABEL_INDEX).fit(frame)
            frame = indexer.transform(frame)
            estimator.setParams(labelCol=_LABEL_INDEX, predictionCol=_PREDICTION_INDEX, **params)
            stages += [
                estimator,
                IndexToString(
                    inputCol=_PREDICTION_INDEX, outputCol="prediction", labels=list(indexer.labels)
                ),
            ]
        else:
            estimator.setParams(labelCol=_LABEL, predictionCol="prediction", **params)
            stages.append(estimator)
        try:
            return Pipeline(stages=stages).fit(frame)
        except Exception as error:  # the JVM's message, first line: a data or parameter issue
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ConfigError(f"candidates: {name!r}: Spark ML could not fit: {first}") from None

    def save(self, family: Family, model: Any, features: Any, path: str) -> None:
        import mlflow.spark
        from mlflow.models import infer_signature

        from kfp_mlflow.models.sklearn_backend import model_requirements

        sample = features.head(50)
        predictions = model.transform(to_spark(local_session(), sample)).select("prediction")
        mlflow.spark.save_model(
            model,
            path,
            signature=infer_signature(sample, predictions.toPandas()["prediction"]),
            input_example=features.head(5),
            pip_requirements=model_requirements(family),
        )


SPARK = SparkBackend()


class SparkScorer:
    """A loaded ``mlflow.spark`` model as ``evaluate`` scores it: predictions through the
    pyfunc model (what serving returns)."""

    def __init__(self, pyfunc_model: Any) -> None:
        self.pyfunc_model = pyfunc_model
        self.pipeline_model = pyfunc_model.get_raw_model()

    def predict(self, features: pd.DataFrame) -> Any:
        import numpy as np

        return np.asarray(self.pyfunc_model.predict(features))


class SparkClassifierScorer(SparkScorer):
    """Adds the class probabilities (the model's ``probability`` column) and ``classes_``.

    Spark orders classes by label index (most frequent first); scikit-learn, and so
    ``evaluate``, by sorted label: the columns are reordered to sorted labels."""

    def __init__(self, pyfunc_model: Any, labels: list[str]) -> None:
        super().__init__(pyfunc_model)
        self.classes_ = sorted(labels)
        self._order = [labels.index(label) for label in self.classes_]

    def predict_proba(self, features: pd.DataFrame) -> Any:
        import numpy as np
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql.functions import col

        frame = to_spark(local_session(), features)
        scored = self.pipeline_model.transform(frame).select(
            vector_to_array(col("probability")).alias("p")
        )
        return np.vstack(scored.toPandas()["p"].to_numpy())[:, self._order]


def load_spark_scorer(model_dir: str) -> SparkScorer:
    """The scorer adapter registered for the ``spark`` flavor (see SCORER_ADAPTERS). Our session
    first, so that MLflow loads the model into it rather than starting a second one."""
    import mlflow.pyfunc
    from pyspark.ml.feature import IndexToString

    local_session()
    pyfunc_model = mlflow.pyfunc.load_model(model_dir)
    last = pyfunc_model.get_raw_model().stages[-1]
    if isinstance(last, IndexToString):
        return SparkClassifierScorer(pyfunc_model, [str(label) for label in last.getLabels()])
    return SparkScorer(pyfunc_model)
