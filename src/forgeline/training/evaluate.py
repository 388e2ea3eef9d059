"""Evaluation of a fitted model on the test split: what the report and the model card show.

Every score is read through :mod:`forgeline.metrics`, so a metric means the same
here as in tuning and in the registration gate. Everything random (the residual sample, the
rows and permutations of permutation importance) is drawn from ``seed``, so one seed gives
one result.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance

from forgeline.entities import MIN_SLICE_ROWS, Evaluation, Task
from forgeline.errors import InvalidInput
from forgeline.fairness import RESAMPLES, group_fairness
from forgeline.metrics import METRICS, Metric, get_metric
from forgeline.util.json import jsonable

__all__ = ["evaluate", "slice_groups", "task_scores"]

MAX_CURVE_POINTS = 200
MAX_RESIDUAL_POINTS = 2000
MAX_SLICE_CATEGORIES = 10  # a numeric sensitive column with more values is cut into quartiles
CALIBRATION_BINS = 10
MISSING_SLICE = "(missing)"
RECENT_SHARE = 0.25  # the newest quarter of the test rows is scored on its own

# The metrics each slice row carries (the primary metric is always added).
KEY_METRICS: dict[Task, tuple[str, ...]] = {
    Task.BINARY: ("roc_auc", "accuracy", "f1"),
    Task.MULTICLASS: ("accuracy", "balanced_accuracy", "f1_macro"),
    Task.REGRESSION: ("rmse", "mae", "r2"),
}


def _predict(model: Any, X: pd.DataFrame, task: Task, classes: np.ndarray | None,
             threshold: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(predicted labels or values, class probabilities or None)."""
    if task is Task.REGRESSION:
        return np.asarray(model.predict(X), dtype=float), None
    assert classes is not None
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if task is Task.BINARY:
        return np.where(proba[:, 1] >= threshold, classes[1], classes[0]), proba
    return classes[np.argmax(proba, axis=1)], proba


def _score(metric: Metric, y: np.ndarray, label: np.ndarray, proba: np.ndarray | None,
           classes: np.ndarray | None) -> float:
    """The metric, or NaN where it is undefined (e.g. AUC of a slice with one class)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return metric(y, proba if metric.needs_proba else label, classes)
        except ValueError:
            return math.nan


def _scores(task: Task, y: np.ndarray, label: np.ndarray, proba: np.ndarray | None,
            classes: np.ndarray | None) -> dict[str, float]:
    """Every metric of ``task`` (NaN where undefined) for one prediction."""
    return {name: _score(metric, y, label, proba, classes) for name, metric in METRICS.items()
            if task in metric.tasks}


def task_scores(model: Any, X: pd.DataFrame, y: pd.Series, task: Task,
                threshold: float = 0.5) -> dict[str, float]:
    """Every metric of ``task`` for ``model`` on ``(X, y)`` from one prediction, as
    :func:`evaluate` scores them (NaN where undefined, e.g. AUC with one class)."""
    classes = None if task is Task.REGRESSION else np.asarray(model.classes_)
    y_true = np.asarray(y, dtype=float) if task is Task.REGRESSION else np.asarray(y)
    label, proba = _predict(model, X, task, classes, threshold)
    return _scores(task, y_true, label, proba, classes)


def _recent(times: pd.Series, task: Task, names: list[str], y: np.ndarray, label: np.ndarray,
            proba: np.ndarray | None, classes: np.ndarray | None) -> dict[str, Any] | None:
    """The key metrics of the newest quarter of the test rows (at least MIN_SLICE_ROWS);
    None when the times cannot be read or there are too few rows."""
    when = pd.to_datetime(times.reset_index(drop=True), errors="coerce", utc=True,
                          format="mixed") if not pd.api.types.is_numeric_dtype(times) \
        else times.reset_index(drop=True).astype(float)
    valid = when.notna().to_numpy()
    n = max(MIN_SLICE_ROWS, int(np.ceil(RECENT_SHARE * valid.sum())))
    if valid.sum() < 2 * n:
        return None
    order = np.argsort(when.to_numpy()[valid], kind="stable")
    rows = np.flatnonzero(valid)[order[-n:]]
    metrics = {name: _score(METRICS[name], y[rows], label[rows],
                            None if proba is None else proba[rows], classes) for name in names}
    newest = when.iloc[rows]
    return {"column": str(times.name), "share": RECENT_SHARE, "rows": int(n),
            "from": str(newest.min()), "to": str(newest.max()), "metrics": metrics}


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    """Keep at most MAX_CURVE_POINTS evenly spaced points, always the first and the last."""
    n = len(arrays[0])
    idx = (np.arange(n) if n <= MAX_CURVE_POINTS
           else np.unique(np.linspace(0, n - 1, MAX_CURVE_POINTS).round().astype(int)))
    return [np.asarray(a, dtype=float)[idx].tolist() for a in arrays]


def _histogram(values: np.ndarray, bins: int, value_range: tuple[float, float] | None = None
               ) -> dict[str, list[float]]:
    counts, edges = np.histogram(values, bins=bins, range=value_range)
    return {"hist_edges": edges.tolist(), "hist_counts": counts.tolist()}


def _calibration(truth: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Reliability diagram on quantile bins, plus a histogram of the predicted probability."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, CALIBRATION_BINS + 1)))
    ids = np.searchsorted(edges[1:-1], p, side="right")
    counts = np.bincount(ids, minlength=max(len(edges) - 1, 1))
    keep = counts > 0
    mean_p = np.bincount(ids, weights=p, minlength=len(counts))[keep] / counts[keep]
    frac = np.bincount(ids, weights=truth.astype(float), minlength=len(counts))[keep]
    return {"mean_predicted": mean_p.tolist(), "fraction_positive": (frac / counts[keep]).tolist(),
            "counts": counts[keep].tolist(), **_histogram(p, 20, (0.0, 1.0))}


def _roc(truth: np.ndarray, p: np.ndarray) -> dict[str, Any] | None:
    if truth.all() or not truth.any():
        return None  # ROC needs both outcomes
    fpr, tpr, _ = skm.roc_curve(truth, p)
    fpr_s, tpr_s = _thin(fpr, tpr)
    return {"fpr": fpr_s, "tpr": tpr_s, "auc": float(skm.roc_auc_score(truth, p))}


def _curves(task: Task, y: np.ndarray, proba: np.ndarray | None, classes: np.ndarray | None,
            metrics: dict[str, float]) -> dict[str, Any]:
    if proba is None or classes is None:
        return {}
    if task is Task.MULTICLASS:
        per_class = []
        for k, cls in enumerate(classes):
            roc = _roc(y == cls, proba[:, k])
            if roc is not None:
                per_class.append({"class": cls, **roc})
        return {"roc_ovr": per_class}
    truth, p = y == classes[1], proba[:, 1]
    curves: dict[str, Any] = {"calibration": _calibration(truth, p)}
    roc = _roc(truth, p)
    if roc is not None:
        curves["roc"] = roc
        precision, recall, _ = skm.precision_recall_curve(truth, p)
        precision_s, recall_s = _thin(precision, recall)
        curves["pr"] = {"precision": precision_s, "recall": recall_s,
                        "average_precision": metrics.get("average_precision", math.nan)}
    return curves


def _residuals(y: np.ndarray, pred: np.ndarray, seed: int) -> dict[str, Any]:
    residual = y - pred
    rng = np.random.default_rng(seed)
    idx = np.arange(len(y)) if len(y) <= MAX_RESIDUAL_POINTS else np.sort(
        rng.choice(len(y), MAX_RESIDUAL_POINTS, replace=False))
    return {"y_true": y[idx].tolist(), "y_pred": pred[idx].tolist(),
            "residual": residual[idx].tolist(), **_histogram(residual, 30)}


_MIN_IMPORTANCE_ROWS = 200


def _importance(model: Any, X: pd.DataFrame, y: np.ndarray, score: Callable[..., float],
                seed: int, rows: int, repeats: int, seconds: float | None
                ) -> tuple[list[dict[str, float | str]], str | None]:
    """Permutation importance of each raw input column: the drop of the primary score.

    Within ``seconds`` (when given): one scoring is timed, then repeats and then rows are
    cut to fit (down to one repeat on 200 rows), else importance is skipped; the note
    says what was done."""
    if repeats == 0 or X.shape[1] == 0:
        return [], None
    rng = np.random.default_rng(seed)
    if len(X) > rows:
        idx = np.sort(rng.choice(len(X), rows, replace=False))
        X, y = X.iloc[idx], y[idx]
    note = None
    if seconds is not None:
        started = time.perf_counter()
        score(model, X, y)
        per_call = time.perf_counter() - started
        calls = seconds / max(per_call, 1e-6) - 1  # the baseline score is one more call
        fit = int(calls // X.shape[1])
        if fit < repeats:
            share = calls / X.shape[1]  # < 1 repeat: fewer rows, cost ~ rows
            keep = len(X) if fit >= 1 else int(len(X) * share)
            if keep < min(_MIN_IMPORTANCE_ROWS, len(X)):
                return [], (f"skipped to stay in the time budget ({seconds:.0f} s left, "
                            f"{X.shape[1]} columns at {per_call:.2f} s per scoring)")
            repeats = max(1, fit)
            if keep < len(X):
                idx = np.sort(rng.choice(len(X), keep, replace=False))
                X, y = X.iloc[idx], y[idx]
            note = (f"cut to {repeats} repeat{'s' if repeats > 1 else ''} on {len(X):,} rows "
                    "to stay in the time budget")
    result = permutation_importance(model, X, y, scoring=score, n_repeats=repeats,
                                    random_state=seed, n_jobs=1)
    found = [{"feature": str(name), "mean": float(m), "std": float(s)} for name, m, s in
             zip(X.columns, result.importances_mean, result.importances_std, strict=True)]
    return sorted(found, key=lambda r: -r["mean"] if math.isfinite(r["mean"]) else math.inf), note


def slice_groups(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A slice label for every row, and the labels in display order (missing last)."""
    labels = np.full(len(values), MISSING_SLICE, dtype=object)
    present = values.notna().to_numpy()
    numeric = is_numeric_dtype(values) and not is_bool_dtype(values)
    if numeric and values.nunique() > MAX_SLICE_CATEGORIES:
        bins = pd.qcut(values, 4, labels=False, duplicates="drop").to_numpy()
        for q, part in values.groupby(bins):  # name each quartile by the values inside it
            labels[bins == q] = f"Q{int(q) + 1} [{part.min():.4g}, {part.max():.4g}]"
    else:
        labels[present] = [f"{v:g}" if numeric else str(v) for v in values[present]]
    if numeric:  # in the order of the values, not of their labels ("10" < "2")
        rank = np.argsort(values.to_numpy(dtype=float, na_value=np.nan), kind="stable")
        order = list(dict.fromkeys(labels[rank]))
    else:
        order = sorted(set(labels))
    return labels, [v for v in order if v != MISSING_SLICE] + [MISSING_SLICE] * (
        MISSING_SLICE in labels)


def _slice_rows(task: Task, names: list[str], labels: np.ndarray, order: list[str],
                y: np.ndarray, label: np.ndarray, proba: np.ndarray | None,
                classes: np.ndarray | None) -> list[dict[str, Any]]:
    rows = []
    for value in order:
        inside = labels == value
        n = int(inside.sum())
        row: dict[str, Any] = {"value": value, "n": n, "share": n / len(y),
                               "skipped": n < MIN_SLICE_ROWS}
        rows.append(row)
        if row["skipped"]:
            continue
        ys, ls = y[inside], label[inside]
        ps = None if proba is None else proba[inside]
        for name in names:
            row[name] = _score(METRICS[name], ys, ls, ps, classes)
        if task is Task.BINARY:
            assert classes is not None
            truth, chosen = ys == classes[1], ls == classes[1]
            row["positive_rate"] = float(chosen.mean())
            row["tpr"] = float(chosen[truth].mean()) if truth.any() else math.nan
            row["fpr"] = float(chosen[~truth].mean()) if (~truth).any() else math.nan
        elif task is Task.MULTICLASS:
            assert classes is not None
            row["selection_rate"] = {str(c): float((ls == c).mean()) for c in classes}
        else:
            row["mean_target"] = float(ys.mean())
            row["mean_prediction"] = float(ls.mean())
    return rows


def _largest_gap(metric: Metric, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The primary metric's gap between the best and the worst scored slice."""
    scored = [r for r in rows if not r["skipped"] and math.isfinite(r[metric.name])]
    if len(scored) < 2:
        return None
    ranked = sorted(scored, key=lambda r: r[metric.name], reverse=metric.greater_is_better)
    best, worst = ranked[0], ranked[-1]
    return {"metric": metric.name, "value": abs(best[metric.name] - worst[metric.name]),
            "best_slice": best["value"], "worst_slice": worst["value"]}


def _fairness(task: Task, metric: Metric, rows: list[dict[str, Any]], labels: np.ndarray,
              y: np.ndarray, label: np.ndarray, proba: np.ndarray | None,
              classes: np.ndarray | None, resamples: int, seed: int) -> dict[str, Any]:
    """forgeline.fairness on the slices' groups, with the demographic parity and equalized
    odds differences also at the top (their point values) and the largest metric gap."""
    found = group_fairness(
        task.value, y, label, labels, positive=None if classes is None else classes[-1],
        proba=proba[:, 1] if task is Task.BINARY and proba is not None else None,
        classes=classes, resamples=resamples, seed=seed, min_rows=MIN_SLICE_ROWS)
    metrics = found["metrics"]
    return {**found, **{k: (metrics.get(k) or {}).get("value") for k in
                        ("demographic_parity_difference", "equalized_odds_difference")},
            "largest_gap": _largest_gap(metric, rows), "n_slices": len(rows),
            "n_scored": sum(not r["skipped"] for r in rows)}


def _check(model: Any, X: pd.DataFrame, y: pd.Series, task: Task | str,
           sensitive: pd.DataFrame | None, rows: int, repeats: int, threshold: float) -> Task:
    if task not in set(Task):
        raise InvalidInput(f"Unknown task {task!r}.",
                           hint="Use one of: binary, multiclass, regression.")
    task = Task(task)
    problem = None
    if not isinstance(X, pd.DataFrame):
        problem = f"X must be a pandas DataFrame, not {type(X).__name__}."
    elif len(X) == 0 or len(X) != len(y):
        problem = f"X has {len(X)} rows and y has {len(y)}: they must be equal and non-zero."
    elif pd.isna(y).any():
        problem = f"y has {int(pd.isna(y).sum())} missing labels; drop those rows first."
    elif sensitive is not None and len(sensitive) != len(X):
        problem = f"sensitive has {len(sensitive)} rows and X has {len(X)}: align them."
    elif rows < 1 or repeats < 0:
        problem = f"importance_rows must be >= 1, importance_repeats >= 0: {rows}, {repeats}."
    elif not 0.0 < threshold < 1.0:
        problem = f"threshold must lie strictly between 0 and 1, got {threshold}."
    elif task is not Task.REGRESSION and not hasattr(model, "predict_proba"):
        problem = (f"A {task} model must have predict_proba; {type(model).__name__} has not "
                   "(wrap it in sklearn's CalibratedClassifierCV).")
    elif task is not Task.REGRESSION and not (
            (n := len(getattr(model, "classes_", ()))) == 2 or (task is Task.MULTICLASS and n > 2)):
        problem = (f"A {task} model needs {'2' if task is Task.BINARY else 'at least 2'} "
                   f"classes in model.classes_, found {n}.")
    if problem:
        raise InvalidInput(problem)
    return task


def evaluate(model: Any, X: pd.DataFrame, y: pd.Series, task: Task | str, *,
             metric: str | None = None, sensitive: pd.DataFrame | None = None, seed: int = 0,
             importance_rows: int = 2000, importance_repeats: int = 3,
             threshold: float = 0.5, times: pd.Series | None = None,
             importance_seconds: float | None = None,
             fairness_resamples: int = RESAMPLES) -> Evaluation:
    """Evaluate a fitted model on a held-out split.

    Args:
        model: A fitted scikit-learn estimator or Pipeline that takes the raw frame ``X``
            (``predict_proba`` and ``classes_`` for classifiers).
        X: The test features, as the model takes them.
        y: The test labels, aligned with ``X``.
        task: ``binary``, ``multiclass`` or ``regression``.
        metric: The primary metric (the task's default when None).
        sensitive: Columns to slice by, aligned row by row with ``X``; they need not be
            features of the model.
        seed: Seeds every random choice, so a seed gives one result.
        importance_rows: Permutation importance runs on at most this many rows.
        importance_repeats: Permutations per feature; 0 skips importance.
        threshold: Probability of the positive class (``classes_[1]``) from which a binary
            model predicts it.
        times: Each test row's time (the spec's time column), aligned with ``X``: the
            newest quarter of the test rows is also scored on its own (``recent``), since
            that is the period production is most like.
        importance_seconds: Time left for permutation importance (a whole-run budget):
            repeats, then rows, are cut to fit, and ``importance_note`` says so.
        fairness_resamples: Bootstrap replicates for the fairness intervals (0: none).

    Returns:
        The Evaluation: every applicable metric, curves, residuals, importance, slices and
        fairness gaps.

    Raises:
        InvalidInput: A malformed argument (rows not aligned, unknown task, missing labels,
            a classifier without ``predict_proba``).
        InvalidSpec: An unknown metric, or one that does not apply to the task.
    """
    task = _check(model, X, y, task, sensitive, importance_rows, importance_repeats, threshold)
    primary = get_metric(metric, task)
    classes = None if task is Task.REGRESSION else np.asarray(model.classes_)
    y_true = np.asarray(y, dtype=float) if task is Task.REGRESSION else np.asarray(y)
    label, proba = _predict(model, X, task, classes, threshold)
    scores = _scores(task, y_true, label, proba, classes)

    def score(estimator: Any, X_: pd.DataFrame, y_: Any) -> float:
        lab, prob = _predict(estimator, X_, task, classes, threshold)
        sign = 1.0 if primary.greater_is_better else -1.0  # importance: higher = matters more
        return sign * _score(primary, np.asarray(y_), lab, prob, classes)

    importance, importance_note = _importance(model, X, y_true, score, seed, importance_rows,
                                              importance_repeats, importance_seconds)
    slice_names = list(dict.fromkeys([*KEY_METRICS[task], primary.name]))
    slices: dict[str, list[dict[str, Any]]] = {}
    fairness: dict[str, dict[str, Any]] = {}
    for column in [] if sensitive is None else sensitive.columns:
        labels, order = slice_groups(sensitive[column].reset_index(drop=True))
        rows = _slice_rows(task, slice_names, labels, order, y_true, label, proba, classes)
        slices[str(column)] = rows
        fairness[str(column)] = _fairness(task, primary, rows, labels, y_true, label, proba,
                                          classes, fairness_resamples, seed)
    return Evaluation(
        task=str(task), metric=primary.name, score=scores[primary.name], metrics=scores,
        n_rows=len(X), classes=None if classes is None else jsonable(classes),
        confusion=None if classes is None else
        skm.confusion_matrix(y_true, label, labels=classes).tolist(),
        curves=_curves(task, y_true, proba, classes, scores),
        residuals=_residuals(y_true, label, seed) if task is Task.REGRESSION else None,
        importance=importance, importance_note=importance_note,
        slices=slices, fairness=fairness,
        recent=None if times is None else _recent(times, task, slice_names, y_true, label,
                                                  proba, classes))
