"""Model performance in production: realised on labelled rows, estimated before labels.

Realised metrics are the task's metrics from :mod:`forgeline.metrics` (the same
functions as the test metrics they are shown beside), overall and per window.

Before labels arrive, a binary classifier's performance is estimated from its confidence,
as NannyML's CBPE does: if the positive-class probability ``p`` is calibrated, a row
predicted positive is a true positive with probability ``p`` and a false positive with
``1 - p`` (a row predicted negative: false negative ``p``, true negative ``1 - p``). The
expected confusion matrix gives accuracy, precision, recall and F1; the expected true- and
false-positive rates over every threshold give ROC AUC. When the profile holds a
calibration map (isotonic, fitted on the test split at training), probabilities go
through it first. The estimate is only as good as the calibration, and it cannot see
concept drift (the same inputs meaning a different outcome): realised metrics can.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data import values as v
from forgeline.data.profile import category_strings
from forgeline.entities import MIN_SLICE_ROWS
from forgeline.fairness import group_fairness
from forgeline.metrics import METRICS
from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.windows import Windows
from forgeline.store.predictions import FeedbackStats, proba_column

__all__ = ["ESTIMATED", "PerformanceResult", "estimate_binary", "performance"]

ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")


@dataclass
class PerformanceResult:
    """Realised and estimated metrics beside the test metrics."""

    task: str
    rows: int
    labelled: int
    reference: dict[str, float]
    realized: dict[str, float | None]
    estimated: dict[str, float | None]
    degraded: list[str]
    windows: list[dict[str, Any]] = field(default_factory=list)
    calibrated: bool = False
    notes: list[str] = field(default_factory=list)
    feedback: FeedbackStats | None = None
    # binary, on the labelled rows: sensitive column -> fairlearn's differences and ratios
    # (point values; forgeline.fairness), overall and in each scored window
    fairness: dict[str, dict[str, float | None]] = field(default_factory=dict)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def estimate_binary(p: np.ndarray, predicted_positive: np.ndarray) -> dict[str, float | None]:
    """CBPE: expected accuracy, precision, recall, F1 and ROC AUC from calibrated ``p``."""
    if not len(p):
        return dict.fromkeys(ESTIMATED)
    tp, fp = float(p[predicted_positive].sum()), float((1 - p[predicted_positive]).sum())
    fn, tn = float(p[~predicted_positive].sum()), float((1 - p[~predicted_positive]).sum())
    out = {"accuracy": (tp + tn) / len(p), "precision": _ratio(tp, tp + fp),
           "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn),
           "roc_auc": None}
    positives, negatives = float(p.sum()), float((1 - p).sum())
    if positives > 0 and negatives > 0:
        desc = np.sort(p)[::-1]
        last = np.r_[np.flatnonzero(np.diff(desc)), len(desc) - 1]  # ties: one threshold
        tpr = np.r_[0.0, np.cumsum(desc)[last] / positives]
        fpr = np.r_[0.0, np.cumsum(1 - desc)[last] / negatives]
        out["roc_auc"] = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    return out


def _score(name: str, y: np.ndarray, label: np.ndarray | None, proba: np.ndarray | None,
           classes: np.ndarray | None) -> float | None:
    metric = METRICS[name]
    given = proba if metric.needs_proba else label
    if given is None or not len(y):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = metric(y, given, classes)
        except (ValueError, IndexError):
            return None
    return value if math.isfinite(value) else None


def _indices(values: pd.Series, names: list[str]) -> np.ndarray:
    """Class index of each value (by its category name); -1 when not a class."""
    where = {n: i for i, n in enumerate(names)}
    text = category_strings(values.reset_index(drop=True))
    return text.map(where).fillna(-1).to_numpy(dtype=np.int64)


def _inputs(frame: pd.DataFrame, labels: pd.Series | None, task: str,
            classes: Sequence[Any] | None
            ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, list[str]]:
    """(y, predicted labels or values, probabilities) in index form, and notes."""
    notes: list[str] = []
    y = label = proba = None
    if task == "regression":
        if "prediction" in frame.columns:
            label = v.to_numbers(frame["prediction"]).to_numpy(dtype="float64")
        if labels is not None:
            y = v.to_numbers(labels).to_numpy(dtype="float64")
        return y, label, None, notes
    names = [str(x) for x in category_strings(pd.Series(list(classes or ()), dtype=object))]
    if "prediction" in frame.columns:
        label = _indices(frame["prediction"], names).astype("float64")
        label[label < 0] = np.nan
    columns = [proba_column(c) for c in classes or ()]
    if columns and all(c in frame.columns for c in columns):
        proba = np.column_stack([v.to_numbers(frame[c]).to_numpy(dtype="float64")
                                 for c in columns])
    if labels is not None:
        y = _indices(labels, names).astype("float64")
        bad = int(((y < 0) & labels.notna().to_numpy()).sum())
        if bad:
            notes.append(f"{bad} label(s) are not classes of the model "
                         f"({', '.join(names)}); they are left out")
        y[y < 0] = np.nan
    return y, label, proba, notes


def _realized(task: str, y: np.ndarray, label: np.ndarray | None, proba: np.ndarray | None,
              classes: np.ndarray | None, mask: np.ndarray) -> dict[str, float | None]:
    ok = mask & ~np.isnan(y)
    if label is not None:
        ok &= ~np.isnan(label)
    if proba is not None:
        ok &= ~np.isnan(proba).any(axis=1)
    yy = y[ok] if task == "regression" else y[ok].astype(np.int64)
    ll = None if label is None else (label[ok] if task == "regression"
                                     else label[ok].astype(np.int64))
    pp = None if proba is None else proba[ok]
    return {name: _score(name, yy, ll, pp, classes) for name, m in METRICS.items()
            if task in m.tasks}


def _estimated(p: np.ndarray | None, label: np.ndarray | None, mask: np.ndarray
               ) -> dict[str, float | None]:
    if p is None:
        return {}
    ok = mask & ~np.isnan(p)
    positive = label[ok] == 1 if label is not None else p[ok] >= 0.5
    return estimate_binary(p[ok], positive)


def _fairness(task: str, y: np.ndarray | None, label: np.ndarray | None,
              groups: Mapping[str, pd.Series], mask: np.ndarray, min_rows: int
              ) -> dict[str, dict[str, float | None]]:
    """Point values of the fairness metrics per sensitive column on the labelled rows."""
    if task != "binary" or y is None or label is None or not groups:
        return {}
    ok = mask & ~np.isnan(y) & ~np.isnan(label)
    if ok.sum() < min_rows:
        return {}
    out = {}
    for column, values in groups.items():
        found = group_fairness("binary", y[ok], label[ok], values.to_numpy()[ok], positive=1,
                               resamples=0, min_rows=min(MIN_SLICE_ROWS, min_rows))
        out[column] = {name: m["value"] for name, m in found["metrics"].items()}
    return out


def _degraded(values: Mapping[str, float | None], reference: Mapping[str, float],
              tolerance: float, prefix: str = "") -> list[str]:
    out = []
    for name, value in values.items():
        ref = reference.get(name)
        if value is None or ref is None or not math.isfinite(ref) or name not in METRICS:
            continue
        loss = (ref - value) if METRICS[name].greater_is_better else (value - ref)
        if loss > tolerance * max(abs(ref), 1e-12):
            out.append(prefix + name)
    return out


def performance(current: pd.DataFrame, labels: pd.Series | None, task: str,
                classes: Sequence[Any] | None, reference_metrics: Mapping[str, float], *,
                config: MonitorConfig | None = None, windows: Windows | None = None,
                calibration: Mapping[str, Sequence[float]] | None = None,
                sensitive: Sequence[str] = ()) -> PerformanceResult | None:
    """Realised metrics on labelled rows and (binary) estimated metrics, overall and per window.

    Args:
        current: the predictions (``prediction`` and ``proba_<class>`` columns).
        labels: true labels aligned with ``current`` row by row (missing: not yet known),
            or None.
        task: ``binary``, ``multiclass`` or ``regression``.
        classes: the model's class labels (None for regression).
        reference_metrics: the test metrics, metric -> value.
        config: tolerance and window size (defaults when None).
        windows: the windows of ``current``'s rows.
        calibration: the profile's calibration map ``{"x": [...], "y": [...]}``.
        sensitive: the model's sensitive columns; those in ``current`` (request fields
            logged beside the inputs) get fairness metrics on the labelled rows (binary).

    Returns:
        None when ``current`` holds no predictions to judge.
    """
    config = config or MonitorConfig()
    if labels is not None and len(labels) != len(current):
        raise ValueError("labels must be aligned with the current rows")
    y, label, proba, notes = _inputs(current, labels, task, classes)
    if label is None and proba is None:
        return None
    class_ids = None if task == "regression" else np.arange(len(classes or ()))
    every = np.ones(len(current), dtype=bool)
    p = None
    if task == "binary" and proba is not None:
        p = proba[:, 1].copy()
        if calibration:
            p = np.interp(p, calibration["x"], calibration["y"])
    labelled = 0 if y is None else int((~np.isnan(y)).sum())
    realized = {} if y is None or not labelled else _realized(task, y, label, proba, class_ids,
                                                              every)
    estimated = _estimated(p, label, every)
    reference = {k: float(x) for k, x in reference_metrics.items()
                 if isinstance(x, int | float) and k in METRICS}
    degraded = (_degraded(realized, reference, config.performance_tolerance)
                + _degraded(estimated, reference, config.performance_tolerance, "estimated_"))
    result = PerformanceResult(task, len(current), labelled, reference, realized, estimated,
                               degraded, calibrated=bool(calibration and p is not None),
                               notes=notes)
    groups = {c: current[c].reset_index(drop=True) for c in sensitive if c in current.columns}
    result.fairness = _fairness(task, y, label, groups, every, config.min_window_rows)
    if windows is not None and len(windows):
        for w, (name, rows) in enumerate(zip(windows.labels, windows.counts(), strict=True)):
            mask = windows.ids == w
            n_labelled = 0 if y is None else int((~np.isnan(y[mask])).sum())
            scored = n_labelled >= config.min_window_rows
            result.windows.append({
                "window": name, "rows": int(rows), "labelled": n_labelled,
                "realized": _realized(task, y, label, proba, class_ids, mask)
                if scored and y is not None else {},
                "estimated": _estimated(p, label, mask) if rows >= config.min_window_rows
                else {},
                "fairness": _fairness(task, y, label, groups, mask, config.min_window_rows)
                if scored else {}})
    return result
