"""Feature transformers that live inside the model pipeline, so serving takes raw inputs.

:func:`datetime_features` turns timestamp columns into numbers a model can use. It sits in the
scikit-learn pipeline (not in preprocessing) so a served model accepts the same raw timestamps
(datetime64 or ISO 8601 text) the training data had.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, TransformerMixin

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour")


class DatetimeFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Each datetime column → year, month, day, dayofweek (Monday=0) and hour, as floats.

    Zoned timestamps are taken in UTC. A missing or unparseable value gives NaN in each of its
    five outputs, so put an imputer after this transformer for models that need one.
    """

    def fit(self, X: Any, y: Any = None) -> DatetimeFeatures:  # noqa: N803 (sklearn's names)
        frame = _as_frame(X)
        self.feature_names_in_ = [str(column) for column in frame.columns]
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        import numpy as np

        frame = _as_frame(X, getattr(self, "feature_names_in_", None))
        if frame.shape[1] != self.n_features_in_:
            fitted = self.n_features_in_
            raise ValueError(f"DatetimeFeatures fitted on {fitted} columns, got {frame.shape[1]}")
        out = np.empty((len(frame), len(DATETIME_PARTS) * frame.shape[1]), dtype="float64")
        for index, column in enumerate(frame.columns):
            stamps = _as_datetime(frame[column])
            for offset, part in enumerate(DATETIME_PARTS):
                values = getattr(stamps.dt, part).to_numpy(dtype="float64", na_value=np.nan)
                out[:, index * len(DATETIME_PARTS) + offset] = values
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        import numpy as np

        names = input_features if input_features is not None else self.feature_names_in_
        return np.asarray(
            [f"{column}_{part}" for column in names for part in DATETIME_PARTS], dtype=object
        )


def datetime_features() -> DatetimeFeatures:
    """A transformer mapping each datetime column to year, month, day, dayofweek and hour."""
    return DatetimeFeatures()


def _as_frame(X: Any, columns: list[str] | None = None) -> pd.DataFrame:  # noqa: N803
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        return X.to_frame()
    frame = pd.DataFrame(X)
    if columns is not None and frame.shape[1] == len(columns):
        frame.columns = columns
    return frame


def _as_datetime(values: pd.Series) -> pd.Series:
    import pandas as pd

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    # Text at serving time (JSON has no timestamp type): ISO 8601, zoned values in UTC.
    parsed = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
    return parsed.dt.tz_localize(None)
