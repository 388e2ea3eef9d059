"""Feature processing: one scikit-learn ColumnTransformer, fit on training folds only.

numeric      median imputation (+ missing indicators) and scaling
categorical  missing -> "__missing__", then one-hot (unseen categories ignored) or, above
             ``max_onehot`` categories with encoding "auto", cross-fitted target encoding
boolean      as a two-value categorical
datetime     year, month, day, day of week, hour, weekend flag; then as numeric
text         TF-IDF of words and word pairs
id           never a feature

The transformers below hold no learned state beyond plain arrays, so the fitted pipeline
round-trips through skops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

from forgeline.data.schema import ColumnKind, Schema

__all__ = ["MISSING", "AsText", "Categories", "DatetimeParts", "build_preprocessor"]

MISSING = "__missing__"
_DATETIME_PARTS = ("year", "month", "day", "dayofweek", "hour", "is_weekend")


class Categories(BaseEstimator, TransformerMixin):
    """Any values -> strings, missing -> ``__missing__`` (so encoders see one dtype)."""

    def fit(self, X: pd.DataFrame, y: object = None) -> Categories:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        out = frame.astype(object).where(frame.notna(), MISSING)
        return out.astype(str).to_numpy(dtype=object)

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
    """Datetime columns -> calendar parts as floats (missing stays NaN for the imputer)."""

    def fit(self, X: pd.DataFrame, y: object = None) -> DatetimeParts:
        self.columns_ = list(pd.DataFrame(X).columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        frame = pd.DataFrame(X)
        parts = []
        for column in frame.columns:
            values = pd.to_datetime(frame[column], errors="coerce", utc=True, format="mixed")
            dt = values.dt
            parts += [dt.year, dt.month, dt.day, dt.day_of_week, dt.hour,
                      (dt.day_of_week >= 5).where(values.notna())]
        return np.column_stack([np.asarray(p, dtype=float) for p in parts])

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        names = input_features if input_features is not None else self.columns_
        return np.asarray([f"{c}_{p}" for c in names for p in _DATETIME_PARTS], dtype=object)


def _folds(target_type: str, seed: int) -> KFold:
    """Target encoding is cross-fitted inside the training data: out-of-fold means only."""
    kind = StratifiedKFold if target_type in ("binary", "multiclass") else KFold
    return kind(n_splits=5, shuffle=True, random_state=seed)


def build_preprocessor(schema: Schema, features: Sequence[str], *, encoding: str = "auto",
                       max_onehot: int = 20, dense: bool = False, seed: int = 0,
                       target_type: str = "auto") -> ColumnTransformer:
    """The ColumnTransformer for ``features`` (a subset of the schema's columns).

    Args:
        dense: produce a dense matrix (for estimators that refuse sparse input).
        target_type: passed to TargetEncoder ("binary", "multiclass", "continuous").
    """
    picked = [schema[name] for name in features]
    numeric = [c.name for c in picked if c.kind is ColumnKind.NUMERIC]
    dates = [c.name for c in picked if c.kind is ColumnKind.DATETIME]
    texts = [c.name for c in picked if c.kind is ColumnKind.TEXT]
    categorical = [c for c in picked if c.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN)]
    wide = encoding == "target" or (encoding == "auto")
    target_encoded = [c.name for c in categorical
                      if encoding == "target" or (wide and c.n_unique > max_onehot)]
    one_hot = [c.name for c in categorical if c.name not in target_encoded]

    steps: list[tuple[str, object, object]] = []
    if numeric:
        steps.append(("numeric", make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler()), numeric))
    if dates:
        steps.append(("datetime", make_pipeline(
            DatetimeParts(), SimpleImputer(strategy="median", keep_empty_features=True)),
            dates))
    if one_hot:
        steps.append(("onehot", make_pipeline(
            Categories(), OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5,
                                        max_categories=max_onehot + 1,
                                        sparse_output=not dense)), one_hot))
    if target_encoded:
        steps.append(("target", make_pipeline(
            Categories(), TargetEncoder(target_type=target_type, cv=_folds(target_type, seed))),
            target_encoded))
    for name in texts:
        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=2000,
                                sublinear_tf=True)
        steps.append((f"text_{name}", Pipeline([("text", AsText()), ("tfidf", tfidf)]), name))
    return ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0 if dense else 0.3,
                             verbose_feature_names_out=False)
