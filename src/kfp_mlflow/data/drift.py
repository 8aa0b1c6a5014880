"""Data and prediction drift of a scored batch against the data the model was trained on.

The reference is the training rows of the registered version: its recipe (``kfp_mlflow.recipe``)
names the immutable data snapshot and the split, so the exact train split is rebuilt. From it:

* numeric features: decile bin edges (quantiles of the training values), the share of training
  rows in each bin, plus a "missing" bin;
* categorical features: the share of each training category, plus "unseen" and "missing" bins;
* the prediction: the model's predictions on the training rows, binned the same way (deciles
  for regression, labels for classification).

A scored batch is counted into the same bins chunk by chunk (memory does not grow with rows),
and each feature gets the Population Stability Index, ``Σ (a − e) · ln(a / e)`` over the bins
(shares clipped at 1e-4 so an empty bin is finite). Rule of thumb: < 0.1 stable, 0.1–0.25
moderate, > 0.25 a shift. Categorical features also report the share of unseen categories.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DEFAULT_THRESHOLD = 0.2
PREDICTION = "prediction"
_QUANTILES = [i / 10 for i in range(1, 10)]
_FLOOR = 1e-4
_REFERENCE_ROWS = 100_000  # enough for stable deciles; bounds the reference's cost


@dataclass
class Bins:
    """How one column is bucketed, and the reference share of each bucket."""

    kind: str  # numeric or categorical
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)

    @classmethod
    def fit(cls, values: pd.Series) -> Bins:
        import numpy as np

        bins = cls(kind="numeric" if _numeric(values) else "categorical")
        if bins.kind == "numeric":
            present = values.dropna().astype(float)
            if len(present):
                bins.edges = sorted({float(q) for q in np.quantile(present, _QUANTILES)})
        else:
            bins.categories = sorted({str(v) for v in values.dropna().unique()})
        counts = bins.count(values)
        bins.expected = list(counts / max(counts.sum(), 1))
        return bins

    def count(self, values: pd.Series) -> np.ndarray:
        """Rows per bucket: numeric bins (or categories, then unseen), then missing."""
        import numpy as np

        missing = values.isna().to_numpy()
        present = values[~missing]
        if self.kind == "numeric":
            index = np.searchsorted(self.edges, present.astype(float).to_numpy(), side="right")
            counts = np.bincount(index, minlength=len(self.edges) + 1).astype(float)
        else:
            import pandas as pd

            unseen = len(self.categories)
            codes = np.asarray(
                pd.Categorical(present.astype(str), categories=self.categories).codes,
                dtype=np.int64,
            )
            codes[codes < 0] = unseen
            counts = np.bincount(codes, minlength=unseen + 1).astype(float)
        return np.append(counts, float(missing.sum()))


def _numeric(values: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


def psi(expected: list[float], counts: np.ndarray) -> float:
    total = float(counts.sum())
    if total == 0:
        return 0.0
    value = 0.0
    for reference, count in zip(expected, counts, strict=True):
        a, e = max(count / total, _FLOOR), max(reference, _FLOOR)
        value += (a - e) * math.log(a / e)
    return value


@dataclass
class Reference:
    """The training profile: bins per feature and for the prediction."""

    features: dict[str, Bins]
    prediction: Bins
    rows: int
    source: str

    @classmethod
    def build(cls, features: pd.DataFrame, predictions: Any, source: str) -> Reference:
        import pandas as pd

        if len(features) > _REFERENCE_ROWS:
            keep = features.sample(n=_REFERENCE_ROWS, random_state=0).index
            features, predictions = features.loc[keep], pd.Series(predictions).loc[keep]
        return cls(
            features={str(c): Bins.fit(features[c]) for c in features.columns},
            prediction=Bins.fit(pd.Series(predictions)),
            rows=len(features),
            source=source,
        )


@dataclass(frozen=True)
class DriftReport:
    psi: dict[str, float]  # feature → PSI; "prediction" for the predictions
    unseen: dict[str, float]  # categorical feature → share of rows with unseen categories
    threshold: float
    reference: str

    @property
    def drifted(self) -> list[str]:
        return sorted(name for name, value in self.psi.items() if value > self.threshold)

    @property
    def detected(self) -> bool:
        return bool(self.drifted)

    @property
    def max_psi(self) -> float:
        return max(self.psi.values(), default=0.0)

    def metrics(self) -> dict[str, float]:
        values = {f"drift.psi.{name}": round(value, 6) for name, value in self.psi.items()}
        values |= {f"drift.unseen.{name}": round(value, 6) for name, value in self.unseen.items()}
        values["drift.max_psi"] = round(self.max_psi, 6)
        values["drift.detected"] = float(self.detected)
        return values


class DriftMonitor:
    """Counts scored chunks into the reference's bins."""

    def __init__(self, reference: Reference) -> None:
        import numpy as np

        self.reference = reference
        self._counts = {
            name: np.zeros(len(bins.expected)) for name, bins in reference.features.items()
        }
        self._prediction = np.zeros(len(reference.prediction.expected))

    def observe(self, features: pd.DataFrame, predictions: Any) -> None:
        import pandas as pd

        for name, bins in self.reference.features.items():
            if name in features.columns:
                self._counts[name] += bins.count(features[name])
        self._prediction += self.reference.prediction.count(pd.Series(predictions))

    def report(self, threshold: float) -> DriftReport:
        values = {
            name: psi(self.reference.features[name].expected, counts)
            for name, counts in self._counts.items()
        }
        values[PREDICTION] = psi(self.reference.prediction.expected, self._prediction)
        unseen = {}
        for name, bins in self.reference.features.items():
            if bins.kind == "categorical":
                counts = self._counts[name]
                unseen[name] = float(counts[-2] / counts.sum()) if counts.sum() else 0.0
        return DriftReport(values, unseen, threshold, self.reference.source)


def plot(report: DriftReport, title: str, png: Path, page: Path) -> None:
    """A bar per feature (and the prediction) with the threshold line: PNG, and an HTML page
    embedding it with the figures as a table (the KFP UI shows ``Output[HTML]``)."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a pipeline pod
    import matplotlib.pyplot as plt

    names = sorted(report.psi, key=lambda n: report.psi[n])
    values = [report.psi[n] for n in names]
    colours = ["tab:red" if v > report.threshold else "tab:blue" for v in values]
    figure, axes = plt.subplots(figsize=(6, 0.35 * len(names) + 1.5), dpi=100)
    axes.barh(names, values, color=colours)
    axes.axvline(report.threshold, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel(f"PSI (threshold {report.threshold:g})")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(png)
    plt.close(figure)
    encoded = base64.b64encode(png.read_bytes()).decode()
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{report.psi[n]:.4f}</td>"
        f"<td>{report.unseen.get(n, 0.0):.2%}</td>"
        f"<td>{'drift' if report.psi[n] > report.threshold else ''}</td></tr>"
        for n in reversed(names)
    )
    verdict = (
        f"drift above {report.threshold:g} in: {', '.join(report.drifted)}"
        if report.detected
        else f"no drift above {report.threshold:g}"
    )
    page.write_text(
        f"<html><body><h3>{html.escape(title)}</h3><p>{html.escape(verdict)}; reference: "
        f"{html.escape(report.reference)}</p><img src='data:image/png;base64,{encoded}'/>"
        "<table border='1'><tr><th>column</th><th>PSI</th><th>unseen</th><th></th></tr>"
        f"{rows}</table></body></html>"
    )
