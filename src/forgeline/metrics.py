"""Task metrics in one table: their names, tasks, direction and how to compute them.

Tuning, evaluation, the registration gate, monitoring and alert rules all read scores
through here, so "higher is better" is decided in one place. The table itself is light:
scikit-learn is imported only when a metric is computed, so parsing an alert rule or
reading a metric's direction costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from forgeline.entities import Task
from forgeline.errors import InvalidSpec

__all__ = ["DEFAULT_METRIC", "METRICS", "Metric", "get_metric"]


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    tasks: frozenset[Task]
    greater_is_better: bool
    needs_proba: bool
    fn: Callable[..., float]  # fn(y_true, y_pred_or_proba, classes) -> float

    def __call__(self, y_true: np.ndarray, prediction: np.ndarray,
                 classes: np.ndarray | None = None) -> float:
        return float(self.fn(y_true, prediction, classes))

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        return a > b if self.greater_is_better else a < b


def _skm() -> Any:
    from sklearn import metrics

    return metrics


_C = frozenset({Task.BINARY, Task.MULTICLASS})
_B = frozenset({Task.BINARY})
_R = frozenset({Task.REGRESSION})


def _positive(proba: np.ndarray) -> np.ndarray:
    return proba[:, 1] if proba.ndim == 2 else proba


def _is_positive(y: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """The positive class of a binary task is the second in sorted order (1, True, "yes")."""
    positive = classes[1] if classes is not None and len(classes) == 2 else 1
    return np.asarray(y) == positive


def _auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray | None) -> float:
    if proba.ndim == 2 and proba.shape[1] > 2:
        return _skm().roc_auc_score(y, proba, multi_class="ovr", average="macro",
                                    labels=classes)
    return _skm().roc_auc_score(y, _positive(proba))


METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("roc_auc", _C, True, True, _auc),
    Metric("average_precision", _B, True, True,
           lambda y, p, c: _skm().average_precision_score(_is_positive(y, c), _positive(p))),
    Metric("log_loss", _C, False, True, lambda y, p, c: _skm().log_loss(y, p, labels=c)),
    Metric("brier", _B, False, True,
           lambda y, p, c: _skm().brier_score_loss(_is_positive(y, c), _positive(p))),
    Metric("accuracy", _C, True, False, lambda y, p, c: _skm().accuracy_score(y, p)),
    Metric("balanced_accuracy", _C, True, False,
           lambda y, p, c: _skm().balanced_accuracy_score(y, p)),
    Metric("f1", _B, True, False,
           lambda y, p, c: _skm().f1_score(_is_positive(y, c), _is_positive(p, c))),
    Metric("f1_macro", _C, True, False, lambda y, p, c: _skm().f1_score(y, p, average="macro")),
    Metric("rmse", _R, False, False, lambda y, p, c: _skm().root_mean_squared_error(y, p)),
    Metric("mae", _R, False, False, lambda y, p, c: _skm().mean_absolute_error(y, p)),
    Metric("r2", _R, True, False, lambda y, p, c: _skm().r2_score(y, p)),
]}

DEFAULT_METRIC = {Task.BINARY: "roc_auc", Task.MULTICLASS: "f1_macro", Task.REGRESSION: "rmse"}


def get_metric(name: str | None, task: Task) -> Metric:
    """The metric called ``name`` (the task's default when None), checked against the task."""
    name = name or DEFAULT_METRIC[task]
    metric = METRICS.get(name)
    if metric is None:
        known = ", ".join(sorted(m for m, v in METRICS.items() if task in v.tasks))
        raise InvalidSpec(f"Unknown metric {name!r}.", hint=f"For {task} use one of: {known}.")
    if task not in metric.tasks:
        known = ", ".join(sorted(m for m, v in METRICS.items() if task in v.tasks))
        raise InvalidSpec(f"Metric {name!r} does not apply to a {task} task.",
                          hint=f"Use one of: {known}.")
    return metric
