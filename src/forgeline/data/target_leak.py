"""How well each feature alone predicts the target: the evidence for the target_leak check.

On a seeded sample of the training split (at most 20,000 labelled rows), each feature gets a
tiny single-feature model, cross-validated over 3 folds, scored on the held-out folds:

- numeric: a decision tree of depth 6 (leaves of at least 10 rows) grown on the feature's
  256 quantile bins, as histogram gradient boosting grows its trees: one sort per column
  instead of one per node, so 50 columns take well under a second. Missing values are a
  leaf of their own, so a column that is filled only for one class is caught too.
- categorical and boolean: the out-of-fold mean target per category (missing is a category;
  an unseen category gets the overall mean).

Both models predict the mean of a target matrix: the 0/1 label (binary), one-hot classes
(multiclass, predicting the most frequent class) or the value (regression); split gains are
then SSE reductions, which for 0/1 targets is Gini.

Scores: binary → ROC AUC, as max(auc, 1 - auc); multiclass → balanced accuracy;
regression → R², the better of the target itself and its ranks (a tree cannot follow the
long tail of a skewed target out of fold, so a perfect predictor of a log-normal target would
score only about 0.9 on the raw values). A genuine predictor scores well below 1; a leak
scores about 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.model_selection import KFold, StratifiedKFold

from forgeline.data import values as v
from forgeline.data.schema import ColumnKind, Schema
from forgeline.entities import Task

__all__ = ["MAX_ROWS", "METRICS", "feature_scores"]

MAX_ROWS = 20_000
FOLDS = 3
MAX_DEPTH = 6
MIN_LEAF = 10
MAX_BINS = 256
METRICS = {Task.BINARY: "roc_auc", Task.MULTICLASS: "balanced_accuracy",
           Task.REGRESSION: "r2"}
_MIN_ROWS = 30  # fewer labelled rows than this and no score means anything


def _fold_ids(labels: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    folds = np.empty(n, dtype=np.int64)
    if labels is not None and np.bincount(labels).min() >= FOLDS:
        parts = StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(
            np.zeros(n), labels)
    else:
        parts = KFold(FOLDS, shuffle=True, random_state=seed).split(np.zeros(n))
    for fold, (_, held_out) in enumerate(parts):
        folds[held_out] = fold
    return folds


def _bin_codes(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Quantile bin of each value, 0..B-1 in value order, and B: the bin of missing values."""
    present = ~np.isnan(x)
    levels = np.linspace(0.0, 1.0, MAX_BINS + 1)[1:-1]
    edges = np.unique(np.quantile(x[present], levels))
    codes = np.searchsorted(edges, x, side="right")
    codes[~present] = len(edges) + 1
    return codes, len(edges) + 1


def _grow(sums: np.ndarray, counts: np.ndarray, lo: int, hi: int, depth: int,
          out: np.ndarray) -> None:
    """Fill ``out[lo:hi]`` with leaf means of a depth-limited tree over bins lo..hi-1."""
    total_n, total_s = counts[lo:hi].sum(), sums[lo:hi].sum(axis=0)
    if depth < MAX_DEPTH and total_n >= 2 * MIN_LEAF and hi - lo > 1:
        left_n = np.cumsum(counts[lo:hi - 1])
        left_s = np.cumsum(sums[lo:hi - 1], axis=0)
        right_n, right_s = total_n - left_n, total_s - left_s
        ok = (left_n >= MIN_LEAF) & (right_n >= MIN_LEAF)
        if ok.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                gain = ((left_s ** 2).sum(axis=1) / left_n + (right_s ** 2).sum(axis=1)
                        / right_n - (total_s ** 2).sum() / total_n)
            gain = np.where(ok, gain, -np.inf)
            best = int(np.argmax(gain))
            if gain[best] > 1e-12 * max(total_n, 1):
                _grow(sums, counts, lo, lo + best + 1, depth + 1, out)
                _grow(sums, counts, lo + best + 1, hi, depth + 1, out)
                return
    out[lo:hi] = total_s / total_n if total_n else np.nan


def _fit_predict(codes: np.ndarray, targets: np.ndarray, fit: np.ndarray,
                 missing: int | None) -> np.ndarray:
    """Out-of-fold predictions (target-matrix means) for the rows outside ``fit``: a tree
    over the bins below ``missing`` plus a leaf for it, or (``missing`` None) one leaf per
    category code."""
    k = int(codes.max()) + 1 if missing is None else missing + 1
    counts = np.bincount(codes[fit], minlength=k).astype("float64")
    sums = np.stack([np.bincount(codes[fit], weights=targets[fit, j], minlength=k)
                     for j in range(targets.shape[1])], axis=1)
    if missing is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            means = sums / counts[:, None]
    else:
        means = np.full((k, targets.shape[1]), np.nan)
        _grow(sums, counts, 0, missing, 0, means)
        if counts[missing]:
            means[missing] = sums[missing] / counts[missing]
    means = np.where(np.isnan(means), targets[fit].mean(axis=0), means)
    return means[codes[~fit]]


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    ranks = rankdata(scores)
    auc = (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives
                                                                          * negatives)
    return max(float(auc), 1.0 - float(auc))


def _r2(actual: np.ndarray, predicted: np.ndarray) -> float | None:
    total = float(np.sum((actual - actual.mean()) ** 2))
    return None if total == 0.0 else 1.0 - float(np.sum((actual - predicted) ** 2)) / total


def _score(task: Task, targets: np.ndarray, predicted: np.ndarray) -> float | None:
    if task is Task.BINARY:
        return _auc(targets[:, 0], predicted[:, 0])
    if task is Task.MULTICLASS:
        actual, guess = targets.argmax(axis=1), predicted.argmax(axis=1)
        return float(np.mean([np.mean(guess[actual == c] == c) for c in np.unique(actual)]))
    scores = [_r2(targets[:, j], predicted[:, j]) for j in range(targets.shape[1])]
    present = [s for s in scores if s is not None]
    return max(present) if present else None


def _column_score(task: Task, column: pd.Series, kind: ColumnKind, targets: np.ndarray,
                  folds: np.ndarray) -> float | None:
    if kind is ColumnKind.NUMERIC:
        x = v.to_numbers(column).to_numpy(dtype="float64", copy=True)
        x[np.isinf(x)] = np.nan
        if np.isnan(x).all():
            return None
        codes, missing = _bin_codes(x)
    else:
        codes, _ = pd.factorize(v.as_categories(column), use_na_sentinel=False)
        missing = None
    scores = []
    for fold in range(FOLDS):
        fit = folds != fold
        predicted = _fit_predict(codes, targets, fit, missing)
        score = _score(task, targets[~fit], predicted)
        if score is not None:
            scores.append(score)
    return float(np.mean(scores)) if scores else None


def feature_scores(train: pd.DataFrame, schema: Schema, task: Task, columns: list[str],
                   *, seed: int, max_rows: int = MAX_ROWS) -> tuple[dict[str, float], int]:
    """Each column's single-feature score (see the module docstring), and the rows used.

    Columns whose score is undefined (all missing, one class in every fold) are left out.
    With fewer than 30 labelled rows there are no scores at all.
    """
    target = schema.target.name
    labelled = train[train[target].notna()]
    if len(labelled) > max_rows:
        labelled = labelled.sample(max_rows, random_state=seed)
    labels = None
    if task is Task.REGRESSION:
        y = v.to_numbers(labelled[target]).to_numpy(dtype="float64")
        keep = np.isfinite(y)
        labelled, y = labelled[keep], y[keep]
        targets = np.column_stack([y, rankdata(y) / max(len(y), 1)])
    else:
        labels, classes = pd.factorize(v.as_categories(labelled[target]))
        if len(classes) < 2:
            return {}, len(labelled)
        targets = np.eye(len(classes))[labels]
        if task is Task.BINARY:
            targets = targets[:, 1:2]
    if len(labelled) < _MIN_ROWS:
        return {}, len(labelled)
    folds = _fold_ids(labels, len(labelled), seed)
    scores = {}
    for name in columns:
        score = _column_score(task, labelled[name], schema[name].kind, targets, folds)
        if score is not None:
            scores[name] = score
    return scores, len(labelled)
