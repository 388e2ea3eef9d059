"""Fewer trees: truncation and pruning of a boosted tree ensemble.

- **Truncation** keeps the first ``k`` boosting rounds (10%, 25% and 50% of them): a
  boosted ensemble's later trees correct ever smaller residuals, so the first rounds
  often carry nearly all of the score at a fraction of the cost. Each variant is scored
  on the validation rows the caller passes; the optimize workflow holds it to the budget.
- **Pruning** merges sibling leaves whose values are equal (within 1e-12 of the model's
  largest leaf value), up the tree, and drops rounds whose trees are then a single leaf
  of value ~0 (:mod:`forgeline.optimization.lgb_text`). Its predictions equal the
  original's to ~1e-12 per tree, so it is returned even when it removes nothing.

Every variant stays an estimator of the teacher's own class (LightGBM's
``LGBMClassifier``/``LGBMRegressor``, rebuilt from ``Booster.model_to_string``, or
scikit-learn's ``HistGradientBoosting*``), so it converts to ONNX, loads through skops and
serves like the teacher. Pruning works on LightGBM's text model only; a histogram
gradient boosting is truncated, not pruned. Other models get no candidate (a log line
says why).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np

from forgeline.entities import Task
from forgeline.metrics import get_metric
from forgeline.optimization.candidate import Candidate, with_final
from forgeline.optimization.lgb_text import prune
from forgeline.packaging.package import final_estimator

__all__ = ["FRACTIONS", "tree_candidates"]

log = logging.getLogger("forgeline.optimization")

FRACTIONS = (0.1, 0.25, 0.5)  # truncation: these shares of the boosting rounds


def tree_candidates(model: Any, X_val: Any, y_val: Any, task: Task | str,
                    metric: str | None) -> list[Candidate]:
    """Truncated and pruned variants of ``model`` (a fitted Pipeline ending in LightGBM or
    a histogram gradient boosting); ``[]`` for any other model.

    Args:
        model: the teacher, a fitted scikit-learn Pipeline (or a bare estimator).
        X_val: validation rows (the teacher's input columns) the variants are scored on.
        y_val: their labels.
        task: the model's task.
        metric: the metric name (the task's default when None).

    Returns:
        One candidate per truncation (params ``{"trees": k}``, technique
        ``"truncation"``) and, for LightGBM, one pruned candidate (technique
        ``"pruning"``). Their ``detail`` gives the validation score beside the teacher's.
    """
    estimator = final_estimator(model)
    kind = _kind(estimator)
    if kind is None:
        log.info("no tree truncation or pruning: the final estimator (%s) is not LightGBM "
                 "nor a histogram gradient boosting", type(estimator).__name__)
        return []
    scorer = get_metric(metric, Task(task))
    y = np.asarray(y_val)

    def score(pipeline: Any) -> float:
        classes = getattr(pipeline, "classes_", None)
        prediction = (pipeline.predict_proba(X_val) if scorer.needs_proba
                      else pipeline.predict(X_val))
        return scorer(y, prediction, classes)

    teacher = score(model)
    rounds = _rounds(estimator, kind)
    out: list[Candidate] = []
    for k in sorted({max(1, round(rounds * f)) for f in FRACTIONS}):
        if k >= rounds:
            continue
        variant = with_final(model, _truncated(estimator, kind, k))
        value = score(variant)
        out.append(Candidate(
            f"truncated-{k}", "truncation", variant, {"trees": k},
            f"first {k} of {rounds} boosting rounds; validation {scorer.name} "
            f"{value:.4f} (teacher {teacher:.4f})"))
    if kind == "lightgbm":
        out.append(_pruned(model, estimator))
    else:
        log.info("no pruning for %s: leaves are merged on LightGBM's text model only",
                 type(estimator).__name__)
    return out


def _kind(estimator: Any) -> str | None:
    module = type(estimator).__module__
    if module.startswith("lightgbm.") and hasattr(estimator, "booster_"):
        return "lightgbm"
    if type(estimator).__name__.startswith("HistGradientBoosting") and hasattr(
            estimator, "_predictors"):
        return "hgb"
    return None


def _rounds(estimator: Any, kind: str) -> int:
    if kind == "lightgbm":
        return int(estimator.booster_.current_iteration())
    return len(estimator._predictors)


def _truncated(estimator: Any, kind: str, k: int) -> Any:
    """A fitted estimator of the same class with the first ``k`` rounds."""
    if kind == "lightgbm":
        text = estimator.booster_.model_to_string(num_iteration=k)
        return _lightgbm_from_text(estimator, text, k)
    new = copy.copy(estimator)  # scikit-learn keeps one list of predictors per round
    new._predictors = estimator._predictors[:k]
    new.set_params(max_iter=k)
    return new


def _lightgbm_from_text(estimator: Any, text: str, rounds: int) -> Any:
    """``estimator`` (fitted) with its booster replaced by the one ``text`` describes."""
    import lightgbm

    new = copy.copy(estimator)
    # set_params writes into this dict too: the teacher's must stay as it is
    new._other_params = dict(getattr(estimator, "_other_params", {}))
    new._Booster = lightgbm.Booster(model_str=text)
    new._best_iteration = -1  # the booster holds exactly the rounds to use
    new._n_features = new._Booster.num_feature()
    new.set_params(n_estimators=rounds)
    return new


def _pruned(model: Any, estimator: Any) -> Candidate:
    result = prune(estimator.booster_.model_to_string())
    rounds = result.trees_after // max(1, estimator.booster_.num_model_per_iteration())
    variant = with_final(model, _lightgbm_from_text(estimator, result.text, rounds))
    return Candidate(
        "pruned", "pruning", variant,
        {"leaves": result.leaves_after, "trees": result.trees_after},
        f"{result.leaves_before - result.leaves_after} of {result.leaves_before} leaves "
        f"merged, {result.trees_before - result.trees_after} of {result.trees_before} "
        "trees dropped; predictions unchanged (within 1e-12 per tree)")
