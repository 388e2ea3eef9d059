"""Fairness across the groups of a sensitive column: one computation for training,
monitoring and the retraining gate.

For a binary task, per group: selection rate, true- and false-positive rate (fairlearn's
``MetricFrame``), calibration (mean predicted probability beside the observed positive
rate, and the Brier score) and the row count; across groups fairlearn's
``demographic_parity_difference`` / ``_ratio`` (selection rates: largest minus smallest,
smallest over largest) and ``equalized_odds_difference`` / ``_ratio`` (the worse of the
TPR and FPR gaps). Groups under ``min_rows`` rows are listed with their count but left out
of the comparisons, as the evaluation's slices are; with none left (an identifier named
sensitive, a tiny test split) every figure is undefined (None) and a limit on it fails.

Every group metric and every difference or ratio comes with a bootstrap percentile
interval (``resamples`` replicates, stratified by group, seeded), so a small group's gap
is not read as certain. Selection rate, TPR and FPR depend only on a group's four
(truth, prediction) cell counts, so a replicate of ``n`` rows is one multinomial draw of
those counts: exact, and fast for any number of rows. Calibration is bootstrapped on rows.

Multiclass: the selection rate of each class per group and, as the demographic parity
difference, the largest gap of any class. Regression: the mean prediction and mean target
per group. Limits (``"equalized_odds_difference <= 0.1"``) apply to binary tasks only;
a limit is checked on the point estimate, its interval reported beside it.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeline.errors import InvalidSpec

__all__ = ["LIMIT_METRICS", "Limit", "check_limits", "figure_text", "group_fairness",
           "parse_limit"]

LIMIT_METRICS = ("demographic_parity_difference", "demographic_parity_ratio",
                 "equalized_odds_difference", "equalized_odds_ratio")
RESAMPLES = 200
LEVEL = 0.95
_ROW_CHUNK = 4_000_000  # bootstrap index draws held at once (calibration)
_LIMIT = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|<|>)\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Limit:
    """``metric op bound``, e.g. ``equalized_odds_difference <= 0.1``."""

    metric: str
    op: str
    bound: float

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` meets the limit; an undefined value does not."""
        if value is None or not math.isfinite(value):
            return False
        return {"<=": value <= self.bound, ">=": value >= self.bound,
                "<": value < self.bound, ">": value > self.bound}[self.op]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_limit(text: str) -> Limit:
    """``"equalized_odds_difference <= 0.1"`` -> a Limit.

    Raises:
        InvalidSpec: not ``metric op number``, or an unknown metric.
    """
    match = _LIMIT.match(str(text))
    if match is None:
        raise InvalidSpec(f"Invalid fairness limit {text!r}: expected 'metric op number' "
                          "with op one of <=, >=, <, >.",
                          hint="For example 'equalized_odds_difference <= 0.1'.")
    metric, op, bound = match.groups()
    if metric not in LIMIT_METRICS:
        raise InvalidSpec(f"Unknown fairness metric {metric!r} in limit {text!r}.",
                          hint="Use one of: " + ", ".join(LIMIT_METRICS) + ".")
    return Limit(metric, op, float(bound))


def _interval(samples: np.ndarray) -> list[float | None]:
    """Percentile interval over axis 0, ignoring undefined replicates."""
    tail = (1 - LEVEL) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low, high = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return [_num(low), _num(high)]


def _num(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _spread(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fairlearn's between-groups difference (max - min) and ratio (min / max) over the
    last axis, NaN where fewer than two groups are defined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defined = np.sum(np.isfinite(rates), axis=-1) >= 2
        high, low = np.nanmax(rates, axis=-1), np.nanmin(rates, axis=-1)
        diff = np.where(defined, high - low, np.nan)
        ratio = np.where(defined, np.where(high > 0, low / np.where(high > 0, high, 1), 1.0),
                         np.nan)
    return diff, ratio


def _rates(cells: np.ndarray) -> dict[str, np.ndarray]:
    """Selection rate, TPR, FPR from cell counts [..., (tn, fp, fn, tp)]."""
    tn, fp, fn, tp = (cells[..., i].astype(float) for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"selection_rate": (fp + tp) / (tn + fp + fn + tp),
                "tpr": tp / (tp + fn), "fpr": fp / (fp + tn)}


def _binary(truth: np.ndarray, chosen: np.ndarray, p: np.ndarray | None, groups: list[str],
            codes: np.ndarray, resamples: int, rng: np.random.Generator
            ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    keep = np.isin(codes, np.arange(len(groups)))
    y, yhat, g = truth[keep].astype(int), chosen[keep].astype(int), codes[keep]
    names = np.asarray(groups, dtype=object)[g]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(metrics={"selection_rate": selection_rate,
                                     "tpr": true_positive_rate, "fpr": false_positive_rate,
                                     "count": count},
                            y_true=y, y_pred=yhat, sensitive_features=names)
        point = {
            "demographic_parity_difference": demographic_parity_difference(
                y, yhat, sensitive_features=names),
            "demographic_parity_ratio": demographic_parity_ratio(
                y, yhat, sensitive_features=names),
            "equalized_odds_difference": equalized_odds_difference(
                y, yhat, sensitive_features=names),
            "equalized_odds_ratio": equalized_odds_ratio(y, yhat, sensitive_features=names)}
    by_group = frame.by_group
    cells = np.stack([np.bincount(g[(y == t) & (yhat == c)], minlength=len(groups))
                      for t, c in ((0, 0), (0, 1), (1, 0), (1, 1))], axis=-1)  # (G, 4)
    boot = np.stack([rng.multinomial(int(n), cell / n, size=resamples) if n else
                     np.zeros((resamples, 4), dtype=int)
                     for cell, n in zip(cells, cells.sum(axis=1), strict=True)], axis=1)
    rates = _rates(boot)  # each (B, G)
    dp_diff, dp_ratio = _spread(rates["selection_rate"])
    tpr_diff, tpr_ratio = _spread(rates["tpr"])
    fpr_diff, fpr_ratio = _spread(rates["fpr"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = {"demographic_parity_difference": dp_diff, "demographic_parity_ratio": dp_ratio,
                   "equalized_odds_difference": np.fmax(tpr_diff, fpr_diff),
                   "equalized_odds_ratio": np.fmin(tpr_ratio, fpr_ratio)}
    calib = _calibration(y, p[keep] if p is not None else None, g, len(groups), resamples, rng)
    rows = []
    for k, name in enumerate(groups):
        row: dict[str, Any] = {"group": name, "count": int(by_group.loc[name, "count"])}
        for metric in ("selection_rate", "tpr", "fpr"):
            row[metric] = _num(by_group.loc[name, metric])
            row[f"{metric}_ci"] = _interval(rates[metric][:, k])
        row.update(calib[k])
        rows.append(row)
    summary = {m: {"value": _num(point[m]), "ci": _interval(samples[m])} for m in LIMIT_METRICS}
    return rows, summary


def _calibration(y: np.ndarray, p: np.ndarray | None, g: np.ndarray, n_groups: int,
                 resamples: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Per group: mean predicted probability, observed positive rate, their gap (with a
    row bootstrap interval) and the Brier score."""
    out: list[dict[str, Any]] = []
    for k in range(n_groups):
        inside = g == k
        if p is None or not inside.any():
            out.append({})
            continue
        pk, yk = p[inside], y[inside].astype(float)
        gaps = np.empty(resamples)
        step = max(1, _ROW_CHUNK // len(pk))
        for start in range(0, resamples, step):
            idx = rng.integers(0, len(pk), size=(min(step, resamples - start), len(pk)))
            gaps[start:start + len(idx)] = yk[idx].mean(axis=1) - pk[idx].mean(axis=1)
        out.append({"mean_predicted": float(pk.mean()), "observed_rate": float(yk.mean()),
                    "calibration_gap": float(yk.mean() - pk.mean()),
                    "calibration_gap_ci": _interval(gaps),
                    "brier": float(np.mean((pk - yk) ** 2))})
    return out


def _codes(values: pd.Series | np.ndarray, min_rows: int) -> tuple[np.ndarray, list[str],
                                                                     dict[str, int]]:
    """Group code per row (-1: a group too small to compare), the compared groups, and
    every group's size."""
    labels = pd.Series(values).astype(object).where(pd.notna(values), "(missing)").astype(str)
    sizes = labels.value_counts()
    kept = sorted(str(v) for v, n in sizes.items() if n >= min_rows)
    where = {v: i for i, v in enumerate(kept)}
    codes = labels.map(where).fillna(-1).to_numpy(dtype=np.int64)
    return codes, kept, {str(k): int(v) for k, v in sizes.items()}


def group_fairness(task: str, y_true: np.ndarray, y_pred: np.ndarray, groups: Any, *,
                   positive: Any = None, proba: np.ndarray | None = None,
                   classes: Any = None, resamples: int = RESAMPLES, seed: int = 0,
                   min_rows: int = 10) -> dict[str, Any]:
    """The fairness of one sensitive column.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true: true labels (or values).
        y_pred: predicted labels (or values).
        groups: each row's group (the sensitive column's values; missing is a group).
        positive: the positive class (binary).
        proba: the positive class's probability per row (binary; calibration), or None.
        classes: the class labels (multiclass).
        resamples: bootstrap replicates for the intervals (0: none).
        seed: seeds the bootstrap.
        min_rows: smaller groups are counted but not compared.

    Returns:
        ``{"task", "groups": [per-group rows], "metrics": {name: {"value", "ci"}},
        "sizes": {group: rows}, "excluded": [small groups], "resamples"}``.
    """
    rng = np.random.default_rng(seed)
    codes, kept, sizes = _codes(groups, min_rows)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    base: dict[str, Any] = {"task": task, "sizes": sizes, "resamples": resamples,
                            "excluded": [k for k in sizes if k not in kept]}
    resamples = max(resamples, 1)  # one replicate keeps the shapes; its interval is moot
    if not kept:  # no group has min_rows rows: nothing to compare, nothing defined
        names = {"binary": LIMIT_METRICS, "multiclass": ("demographic_parity_difference",)}
        return {**base, "groups": [], "metrics": {
            m: {"value": None, "ci": [None, None]} for m in names.get(task, ())}}
    if task == "binary":
        rows, metrics = _binary(y_true == positive, y_pred == positive, proba, kept, codes,
                                resamples, rng)
        if base["resamples"] == 0:
            for m in metrics.values():
                m["ci"] = [None, None]
        return {**base, "groups": rows, "metrics": metrics}
    rows = []
    if task == "multiclass":
        worst: float | None = None
        for k, name in enumerate(kept):
            inside = codes == k
            rows.append({"group": name, "count": int(inside.sum()), "selection_rate": {
                str(c): float(np.mean(y_pred[inside] == c)) for c in classes}})
        for c in ([] if classes is None else list(classes)):
            gap = _spread(np.array([r["selection_rate"][str(c)] for r in rows]))[0]
            if np.isfinite(gap):
                worst = max(worst or 0.0, float(gap))
        return {**base, "groups": rows, "metrics": {"demographic_parity_difference": {
            "value": worst, "ci": [None, None]}}}
    for k, name in enumerate(kept):
        inside = codes == k
        rows.append({"group": name, "count": int(inside.sum()),
                     "mean_prediction": float(np.mean(y_pred[inside].astype(float))),
                     "mean_target": float(np.mean(y_true[inside].astype(float)))})
    return {**base, "groups": rows, "metrics": {}}


def check_limits(limits: list[Limit], fairness: dict[str, dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """Every limit on every sensitive column: ``{"limit", "column", "metric", "value",
    "ci", "passed"}`` (a value that cannot be computed does not pass)."""
    out = []
    for limit in limits:
        for column, result in fairness.items():
            found = result.get("metrics", {}).get(limit.metric, {})
            value = found.get("value")
            out.append({"limit": str(limit), "column": column, "metric": limit.metric,
                        "value": value, "ci": found.get("ci", [None, None]),
                        "passed": limit.holds(value)})
    return out


def figure_text(value: float | None) -> str:
    """A fairness figure in a sentence: ``0.081``, or ``undefined`` (no groups to compare)."""
    return "undefined" if value is None else f"{value:.3f}"
