"""Forgeline's own transformers, the steps of a model pipeline beside scikit-learn's.

They live with the model package rather than with training because every stage that
handles a fitted model meets them: training builds pipelines with them
(:mod:`forgeline.training.features`), the package loader trusts them, and serving converts
them to ONNX. Each holds no learned state beyond plain arrays, so a fitted pipeline
round-trips through skops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["MISSING", "AsText", "Categories", "DatetimeParts"]

MISSING = "__missing__"
_DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour", "is_weekend")
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


_BOOL_WORDS = np.array(["False", "True"], dtype=object)


class Categories(BaseEstimator, TransformerMixin):
    """Any values -> strings, missing -> ``__missing__`` (so encoders see one dtype)."""

    def fit(self, X: pd.DataFrame, y: object = None) -> Categories:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = np.empty(frame.shape, dtype=object)
        for j in range(frame.shape[1]):
            column = frame.iloc[:, j]
            if isinstance(column.dtype, pd.StringDtype):  # strings already: ~10x cheaper
                out[:, j] = column.to_numpy(dtype=object, na_value=MISSING)
            elif column.dtype == bool:  # never missing: str(True), str(False)
                out[:, j] = _BOOL_WORDS[column.to_numpy().astype(np.intp)]
            else:
                out[:, j] = column.astype(object).where(column.notna(), MISSING).astype(str)
        return out

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


class AsText(BaseEstimator, TransformerMixin):
    """One text column -> a 1-D array of strings, missing -> "" (what TF-IDF expects)."""

    def fit(self, X: pd.Series, y: object = None) -> AsText:
        return self

    def transform(self, X: pd.Series | pd.DataFrame) -> np.ndarray:
        series = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(X)
        return series.fillna("").astype(str).to_numpy(dtype=object)

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        return np.asarray(input_features or ["text"], dtype=object)


class DatetimeParts(BaseEstimator, TransformerMixin):
    """Datetime columns -> calendar parts and the absolute position in time, as floats
    (missing stays NaN for the imputer).

    Per column: year, month, day, day of week, hour, the weekend flag, and the days elapsed
    since 1970-01-01 (fractional). The calendar parts repeat every year; the elapsed days
    keep where a row sits in time, so a model can learn the most recent regime of data
    that changes over the years (a tree sends rows newer than its training data to its
    newest leaves). Pipelines fitted before the elapsed days were added (no ``elapsed_``)
    keep their six parts.
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> DatetimeParts:
        self.columns_ = list(pd.DataFrame(X).columns)
        self.elapsed_ = True
        return self

    @property
    def parts(self) -> tuple[str, ...]:
        """The names of the parts made of each column, in order."""
        return (*_DATETIME_PARTS, *(("elapsed_days",) if getattr(self, "elapsed_", False)
                                    else ()))

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        elapsed = getattr(self, "elapsed_", False)
        parts = []
        for column in frame.columns:
            values = pd.to_datetime(frame[column], errors="coerce", utc=True, format="mixed")
            dt = values.dt
            parts += [dt.year, dt.month, dt.day, dt.day_of_week, dt.hour,
                      (dt.day_of_week >= 5).where(values.notna())]
            if elapsed:
                parts.append((values - _EPOCH) / pd.Timedelta(days=1))
        return np.column_stack([np.asarray(p, dtype=float) for p in parts])

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        names = input_features if input_features is not None else self.columns_
        return np.asarray([f"{c}_{p}" for c in names for p in self.parts], dtype=object)
