"""The reference profile: training-data statistics that monitoring compares production to.

Monitoring never needs the training data again: everything it compares against is here.
The profile is a JSON-serialisable dict (missing or undefined statistics are ``null``)::

    {"format": 1,
     "rows": 50000,
     "columns": {name: stats, ...},       # every profiled feature column
     "target": {"name": "is_fraud", **stats} | null}

``stats`` always has ``kind`` (a ColumnKind value), ``dtype``, ``count`` (non-missing
values) and ``missing_share``; then, by kind:

- numeric: ``min``, ``max``, ``mean``, ``std`` (sample, ddof=1), ``quantiles``
  {p1, p5, p25, p50, p75, p95, p99} -- all over the finite values -- and ``bins``
  {"edges": [-inf, e1, ..., +inf], "counts": [...]}: the inner edges are the data's
  quantiles at 1/bins, 2/bins, ... (duplicates removed, so a discrete column has fewer bins),
  a bin is ``[edges[i], edges[i+1])``, and the counts add up to ``count``. Re-bin production
  values with :func:`bin_counts` and the same edges to compute PSI or Jensen-Shannon.
  The outer edges are floats ``-inf``/``inf`` (``json`` writes them as -Infinity/Infinity;
  a writer that turns them into ``null`` is understood by :func:`bin_counts` too).
- categorical, boolean: ``categories`` {value: count} for the 50 most frequent, as strings
  (see :func:`category_strings`: 1.0 and 1 are "1", booleans "True"/"False"),
  ``other_count`` (the rest), ``n_unique``.
- datetime: ``min`` and ``max`` as ISO 8601 strings (text is parsed as dates first).
- text: ``mean_length`` in characters.
- id columns are not profiled: every value is new, there is nothing to compare.

Training adds what monitoring needs beyond the columns (:func:`reference_extras`), so
monitoring never needs the training data:

- ``prediction``: the distribution of the model's predictions on the test split, binned
  like a profile column: the positive-class probability (binary; ``proba``), the predicted
  labels (classifiers; ``labels``) or the predicted values (regression; ``values``);
  ``column`` names the prediction-log column to compare with. With ``y_test`` a binary
  model also gets ``calibration``: an isotonic map from predicted to observed positive rate
  on the test split, which the performance estimate applies before trusting probabilities.
- ``multivariate``: PCA reference of the numeric features (:mod:`forgeline.data.pca`).
- ``bin_means``: per numeric feature, the mean of the training values in each profile bin,
  which makes the binned Wasserstein distance exact (:mod:`forgeline.monitoring.stats`).
- ``quality``: the share of duplicated rows among the training features.
- ``time`` (when the spec names ``data.time_column``): ``{"column": name, "min": ..., "max":
  ...}``, the training data's event-time column and its range (ISO 8601 strings, or numbers
  for a numeric clock). That column is not a model input; monitoring cuts its time windows
  by it when the current data has it (:func:`time_section`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data import values as v
from forgeline.data.pca import fit_reference
from forgeline.data.schema import ColumnKind, Schema
from forgeline.errors import InvalidInput
from forgeline.store.predictions import proba_column

__all__ = ["FORMAT", "MAX_CALIBRATION_POINTS", "QUANTILES", "TOP_CATEGORIES", "bin_counts",
           "bin_means", "build_profile", "category_strings", "duplicate_share",
           "feature_bin_means", "prediction_section", "reference_extras", "time_section"]

FORMAT = 1
TOP_CATEGORIES = 50
QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95,
             "p99": 0.99}

category_strings = v.as_categories
MAX_CALIBRATION_POINTS = 100
_MIN_CALIBRATION_ROWS = 100
_PRIME = np.uint64(1_000_003)


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _edges(values: Sequence[float | None]) -> np.ndarray:
    """Profile edges as floats: ``None`` (an infinity written as null) at either end -> ±inf."""
    edges = np.array([np.nan if e is None else e for e in values], dtype="float64")
    if len(edges) and np.isnan(edges[0]):
        edges[0] = -np.inf
    if len(edges) and np.isnan(edges[-1]):
        edges[-1] = np.inf
    return edges


def bin_counts(values: Any, edges: Sequence[float | None]) -> np.ndarray:
    """How many of ``values`` fall in each profile bin ``[edges[i], edges[i+1])``.

    Missing values are not counted; ±inf go to the outer bins. Use the ``edges`` of a
    profile's numeric column to compare production data with the reference ``counts``.
    """
    inner = _edges(edges)[1:-1]
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    array = array[~np.isnan(array)]
    index = np.searchsorted(inner, array, side="right")
    return np.bincount(index, minlength=len(inner) + 1)


def _numeric(series: pd.Series, bins: int) -> dict[str, Any]:
    values = v.to_numbers(series).to_numpy(dtype="float64")
    present = values[~np.isnan(values)]
    finite = present[np.isfinite(present)]
    stats: dict[str, Any] = {"min": None, "max": None, "mean": None, "std": None,
                             "quantiles": dict.fromkeys(QUANTILES)}
    inner = np.array([], dtype="float64")
    if len(finite):
        levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        points = np.quantile(finite, [*QUANTILES.values(), *levels])
        stats.update(min=_num(finite.min()), max=_num(finite.max()), mean=_num(finite.mean()),
                     std=_num(finite.std(ddof=1)) if len(finite) > 1 else None,
                     quantiles={k: _num(q) for k, q in zip(QUANTILES, points, strict=False)})
        inner = np.unique(points[len(QUANTILES):])
        if not len(inner):  # one bin edge per profile, even for bins=1
            inner = np.array([float(np.median(finite))])
    counts = np.bincount(np.searchsorted(inner, present, side="right"),
                         minlength=len(inner) + 1)
    stats["bins"] = {"edges": [-np.inf, *(float(e) for e in inner), np.inf],
                     "counts": [int(c) for c in counts]}
    return stats


def _categorical(series: pd.Series) -> dict[str, Any]:
    counts = v.category_counts(series)
    top = counts.iloc[:TOP_CATEGORIES]
    return {"categories": {str(k): int(c) for k, c in top.items()},
            "other_count": int(counts.iloc[TOP_CATEGORIES:].sum()), "n_unique": len(counts)}


def _datetime(series: pd.Series) -> dict[str, Any]:
    values = v.parse_datetimes(series).dropna()
    if values.empty:
        return {"min": None, "max": None}
    return {"min": values.min().isoformat(), "max": values.max().isoformat()}


def _text(series: pd.Series) -> dict[str, Any]:
    lengths = series.dropna().astype(str).str.len()
    return {"mean_length": _num(lengths.mean()) if len(lengths) else None}


def column_profile(series: pd.Series, kind: ColumnKind, bins: int = 20) -> dict[str, Any]:
    """The statistics of one column of the given kind (see the module docstring)."""
    count = int(series.notna().sum())
    stats: dict[str, Any] = {"kind": kind.value, "dtype": str(series.dtype), "count": count,
                             "missing_share": 1 - count / len(series) if len(series) else 0.0}
    if kind is ColumnKind.NUMERIC:
        stats.update(_numeric(series, bins))
    elif kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        stats.update(_categorical(series))
    elif kind is ColumnKind.DATETIME:
        stats.update(_datetime(series))
    elif kind is ColumnKind.TEXT:
        stats.update(_text(series))
    return stats


def build_profile(df: pd.DataFrame, schema: Schema, bins: int = 20) -> dict[str, Any]:
    """The reference profile of ``df``: schema columns present in it, and the target.

    Args:
        df: the training data (the features and the target; other columns are ignored).
        schema: the kinds of its columns.
        bins: numeric bins per column (quantile edges; fewer when values repeat).
    """
    if bins < 1:
        raise InvalidInput(f"Profile bins must be at least 1, not {bins}.",
                           hint="Use the default of 20.")
    columns = {c.name: column_profile(df[c.name], c.kind, bins) for c in schema.columns
               if c.name in df.columns and c.kind is not ColumnKind.ID}
    target = None
    if schema.target.name in df.columns:
        target = {"name": schema.target.name,
                  **column_profile(df[schema.target.name], schema.target.kind, bins)}
    return {"format": FORMAT, "rows": len(df), "columns": columns, "target": target}


# -- what monitoring compares beyond the columns (merged into the profile at training) --
def bin_means(values: Any, edges: Sequence[float | None]) -> list[float | None]:
    """The mean of ``values`` in each profile bin (None for an empty bin)."""
    x = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    x = x[np.isfinite(x)]
    inner = np.asarray([float(e) for e in edges[1:-1] if e is not None], dtype="float64")
    where = np.searchsorted(inner, x, side="right")
    sums = np.bincount(where, weights=x, minlength=len(inner) + 1)
    counts = np.bincount(where, minlength=len(inner) + 1)
    return [float(s / c) if c else None for s, c in zip(sums, counts, strict=True)]


def _numeric_profile(values: Any, bins: int) -> dict[str, Any]:
    stats = column_profile(pd.Series(np.asarray(values, dtype="float64")),
                           ColumnKind.NUMERIC, bins)
    stats["bin_means"] = bin_means(values, stats["bins"]["edges"])
    return stats


def _calibration(p: np.ndarray, positive: np.ndarray) -> dict[str, list[float]] | None:
    if len(p) < _MIN_CALIBRATION_ROWS or positive.all() or not positive.any():
        return None
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, positive)
    x, y = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
    if len(x) > MAX_CALIBRATION_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_CALIBRATION_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return {"x": x.tolist(), "y": y.tolist()}


def prediction_section(task: str, classes: Sequence[Any] | None, labels: Any = None,
                       proba: np.ndarray | None = None, values: Any = None,
                       y_true: Any = None, bins: int = 20) -> dict[str, Any]:
    """The ``prediction`` section from predictions already made.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        classes: the class labels in the model's order (None for regression).
        labels: predicted labels (classifiers).
        proba: class probabilities, rows x classes (binary: the positive class is the
            second column), or the positive-class probability as one column.
        values: predicted values (regression).
        y_true: true labels of the same rows, for the calibration map (binary).
        bins: quantile bins for numeric distributions.
    """
    section: dict[str, Any] = {"task": task, "column": "prediction"}
    if task == "regression":
        section["values"] = _numeric_profile(values, bins)
        return section
    if labels is not None:
        section["labels"] = column_profile(pd.Series(np.asarray(labels, dtype=object)),
                                           ColumnKind.CATEGORICAL, bins)
    if task == "binary" and proba is not None and classes is not None:
        p = np.asarray(proba, dtype="float64")
        p = p[:, 1] if p.ndim == 2 else p
        positive = classes[1]
        section.update(column=proba_column(positive), positive_class=str(positive),
                       proba=_numeric_profile(p, bins))
        if y_true is not None:
            names = category_strings(pd.Series(np.asarray(y_true, dtype=object)))
            truth = (names == category_strings(pd.Series([positive], dtype=object))[0])
            calibration = _calibration(p, truth.to_numpy(dtype=bool))
            if calibration is not None:
                section["calibration"] = calibration
    return section


def reference_extras(model: Any, X_train: pd.DataFrame, X_test: pd.DataFrame, schema: Schema,
                     task: str, classes: Sequence[Any] | None, *, y_test: Any = None,
                     profile: Mapping[str, Any] | None = None, bins: int = 20,
                     seed: int = 0, times: pd.Series | None = None,
                     personal: Iterable[str] = ()) -> dict[str, Any]:
    """The monitoring sections to merge into the reference profile.

    Args:
        model: the fitted model (``predict``; ``predict_proba`` for classifiers).
        X_train: the training features, as the model takes them.
        X_test: the test features.
        schema: the kinds of the columns (numeric columns go into the PCA).
        task: ``binary``, ``multiclass`` or ``regression``.
        classes: the model's ``classes_`` (None for regression).
        y_test: the test labels; with them a binary model's probabilities get a
            calibration map for the performance estimate.
        profile: the profile built from ``X_train`` (its bin edges are reused for
            ``bin_means``); without it the edges are computed again with ``bins``.
        bins: quantile bins of the prediction distribution (and of the features when no
            profile is given).
        seed: for the PCA's row sample on large training sets.
        times: the training rows' event-time column (``data.time_column``, named by the
            Series' name); adds the ``time`` section.
        personal: columns whose values the profile must not hold (personal data): left
            out of the PCA (its means) and the bin means.

    Returns:
        JSON-serialisable ``{"prediction": ..., "multivariate": ... | None,
        "bin_means": ..., "quality": ...}``, and ``"time": ...`` with ``times``.
    """
    task = str(task)
    classes = None if classes is None else [
        c.item() if isinstance(c, np.generic) else c for c in classes]
    if task == "regression":
        prediction = prediction_section(task, None, values=model.predict(X_test), bins=bins)
    else:
        proba = labels = None
        if hasattr(model, "predict_proba") and classes is not None:
            proba = np.asarray(model.predict_proba(X_test))  # one pass: labels from it too
            labels = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        else:
            labels = model.predict(X_test)
        prediction = prediction_section(task, classes, labels=labels, proba=proba,
                                        y_true=y_test, bins=bins)
    kinds = {c.name: c.kind for c in schema.columns}
    left_out = {str(c) for c in personal}
    numeric = [c for c in X_train.columns if kinds.get(str(c)) is ColumnKind.NUMERIC
               and str(c) not in left_out]
    extras = {"prediction": prediction,
              "multivariate": fit_reference(X_train[numeric], X_test[numeric], seed=seed),
              "bin_means": feature_bin_means(X_train[numeric], profile, bins),
              "quality": {"duplicate_share": duplicate_share(X_train, list(X_train.columns))}}
    if times is not None:
        extras["time"] = time_section(times)
    return extras


def time_section(times: pd.Series) -> dict[str, Any]:
    """The ``time`` section: the event-time column's name (the Series' name) and range.

    Datetimes (or text parsed as dates) give ISO 8601 strings, a numeric clock numbers;
    ``min`` and ``max`` are None when no value is usable.
    """
    values = v.time_values(times).dropna()
    low = high = None
    if len(values) and pd.api.types.is_datetime64_any_dtype(values.dtype):
        low, high = values.min().isoformat(), values.max().isoformat()
    elif len(values) and v.is_number_dtype(values):
        low, high = _num(values.min()), _num(values.max())
    return {"column": str(times.name), "min": low, "max": high}


def feature_bin_means(frame: pd.DataFrame, profile: Mapping[str, Any] | None = None,
                      bins: int = 20) -> dict[str, list[float | None]]:
    """Per numeric column of ``frame``, the mean of its values in each profile bin."""
    columns = (profile or {}).get("columns") or {}
    out = {}
    for name in frame.columns:
        stats = columns.get(str(name))
        if stats is None or "bins" not in stats:
            stats = column_profile(frame[name], ColumnKind.NUMERIC, bins)
        out[str(name)] = bin_means(frame[name], stats["bins"]["edges"])
    return out


def _exact_duplicates(frame: pd.DataFrame) -> int:
    try:
        return int(frame.duplicated().sum())
    except TypeError:  # unhashable cells (lists from Parquet): compare their text
        return int(frame.astype(str).where(frame.notna()).duplicated().sum())


def duplicate_share(frame: pd.DataFrame, columns: Iterable[str],
                    buckets: Sequence[np.ndarray] = ()) -> float | None:
    """Share of rows that repeat an earlier row over ``columns`` (None without columns).

    ``buckets``: for some of those columns, each row's bucket (as monitoring bins them).
    Two equal rows fall in the same bucket of every such column, so rows whose bucket
    combination is unique cannot be duplicates; only the others (with continuous columns,
    usually none) are compared value by value. The result is exact.
    """
    columns = [c for c in columns if c in frame.columns]
    if not columns or not len(frame):
        return None
    keys = list(buckets)
    rows = frame[columns]
    if keys:
        key = np.zeros(len(frame), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for buckets in keys:  # collisions only add candidates: no mixing needed
                key *= _PRIME
                key += buckets.astype(np.uint64)
        ordered = np.sort(key)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]
        if not len(repeated):
            return 0.0
        rows = rows.iloc[np.flatnonzero(np.isin(key, np.unique(repeated)))]
    return _exact_duplicates(rows) / len(frame)
