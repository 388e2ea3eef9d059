"""Reference extras: what monitoring needs beyond the data profile, computed at training.

:func:`reference_extras` returns sections that the training orchestrator merges into
``profile.json`` (``profile.update(extras)``), so monitoring never needs the training data:

- ``prediction``: the distribution of the model's predictions on the test split, binned
  like a profile column: the positive-class probability (binary; ``proba``), the predicted
  labels (classifiers; ``labels``) or the predicted values (regression; ``values``);
  ``column`` names the prediction-log column to compare with. With ``y_test`` a binary
  model also gets ``calibration``: an isotonic map from predicted to observed positive rate
  on the test split, which the performance estimate applies before trusting probabilities.
- ``multivariate``: PCA reference of the numeric features (see :mod:`.multivariate`).
- ``bin_means``: per numeric feature, the mean of the training values in each profile bin,
  which makes the binned Wasserstein distance exact (see :mod:`.stats`).
- ``quality``: the share of duplicated rows among the training features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data.profile import category_strings, column_profile
from forgeline.data.schema import ColumnKind, Schema
from forgeline.monitoring.multivariate import fit_reference
from forgeline.monitoring.quality import duplicate_share
from forgeline.store.predictions import proba_column

__all__ = ["MAX_CALIBRATION_POINTS", "bin_means", "feature_bin_means", "prediction_section",
           "reference_extras"]

MAX_CALIBRATION_POINTS = 100
_MIN_CALIBRATION_ROWS = 100


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
                     seed: int = 0) -> dict[str, Any]:
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

    Returns:
        JSON-serialisable ``{"prediction": ..., "multivariate": ... | None,
        "bin_means": ..., "quality": ...}``.
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
    numeric = [c for c in X_train.columns if kinds.get(str(c)) is ColumnKind.NUMERIC]
    return {"prediction": prediction,
            "multivariate": fit_reference(X_train[numeric], X_test[numeric], seed=seed),
            "bin_means": feature_bin_means(X_train[numeric], profile, bins),
            "quality": {"duplicate_share": duplicate_share(X_train, list(X_train.columns))}}


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
