"""The spec's fairness limits on the test split, and a mitigated candidate when one fails.

``check_sensitive`` and ``check_task`` refuse, before any work, a ``data.sensitive``
column the data lacks and limits on a task they do not apply to (multiclass, regression).

``check_fairness`` checks every limit of ``fairness.limits`` on every sensitive column of
the evaluation (the point estimate decides; the bootstrap interval is reported beside it).
When a limit fails and ``fairness.mitigate`` is ``threshold_optimizer``, fairlearn's
``ThresholdOptimizer`` (``prefit=True``: the chosen model is not refitted) learns one
threshold per group on the TRAINING split, under the equalized-odds constraint when an
equalized-odds limit failed and demographic parity otherwise, and is scored on the test
split: its primary metric, the cost against the unmitigated model (positive: worse) and
its fairness. Its decisions are randomised between two thresholds for some groups, seeded.

The candidate is reported, not registered: it needs the sensitive column at prediction
time, which the model package's signature (features only) does not take. The registered
model remains the unmitigated one, and the report and card say whether the candidate met
the limits and at what cost.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeline.entities import MIN_SLICE_ROWS, Evaluation, Task
from forgeline.errors import InvalidSpec
from forgeline.fairness import check_limits, figure_text, group_fairness
from forgeline.metrics import METRICS
from forgeline.training.evaluate import slice_groups
from forgeline.training.spec import FairnessSpec

__all__ = ["check_fairness", "check_sensitive", "check_task", "fairness_metrics",
           "fairness_summary"]

MAX_FIT_ROWS = 50_000  # the thresholds are learned on at most this many training rows


def check_task(fairness: FairnessSpec, task: Task) -> None:
    """Limits apply to binary tasks only.

    Raises:
        InvalidSpec: limits are set for a multiclass or regression task.
    """
    if fairness.limits and task is not Task.BINARY:
        raise InvalidSpec(f"fairness.limits apply to binary tasks only; this one is {task}.",
                          hint="Remove fairness.limits: the report still shows per-group "
                               "selection rates (multiclass) or mean predictions "
                               "(regression) for data.sensitive.")


def check_sensitive(frame: pd.DataFrame, sensitive: Sequence[str]) -> None:
    """Raises InvalidSpec when ``data.sensitive`` names a column the data lacks."""
    missing = [c for c in sensitive if c not in frame.columns]
    if missing:
        raise InvalidSpec(f"data.sensitive names column(s) not in the data: "
                          f"{', '.join(map(repr, missing))}.",
                          hint="Fix the names in data.sensitive (they are case-sensitive); "
                               f"the data has {', '.join(map(str, frame.columns[:20]))}.")


def _group_labels(frame: pd.DataFrame) -> np.ndarray:
    """One group per row: the slice labels of every column joined (numeric columns with
    many values are cut into quartiles, as the evaluation's slices are)."""
    parts = [slice_groups(frame[c].reset_index(drop=True))[0].astype(str) for c in frame]
    joined = parts[0]
    for part in parts[1:]:
        joined = np.char.add(np.char.add(joined.astype(str), " & "), part)
    return np.asarray(joined, dtype=object)


def _mitigate(fairness: FairnessSpec, failed: list[str], model: Any, ev: Evaluation,
              train: tuple[pd.DataFrame, pd.Series, pd.DataFrame],
              test: tuple[pd.DataFrame, pd.Series, pd.DataFrame], seed: int
              ) -> dict[str, Any]:
    from fairlearn.postprocessing import ThresholdOptimizer

    X, y, s = train
    if len(X) > MAX_FIT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), MAX_FIT_ROWS, replace=False))
        X, y, s = X.iloc[rows], y.iloc[rows], s.iloc[rows]
    classes = np.asarray(model.classes_)
    constraint = ("equalized_odds" if any(m.startswith("equalized_odds") for m in failed)
                  else "demographic_parity")
    optimizer = ThresholdOptimizer(estimator=model, constraints=constraint,
                                   objective="balanced_accuracy_score", prefit=True,
                                   predict_method="predict_proba")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # fairlearn wants 0/1 labels; the model's positive class is classes_[1]
        optimizer.fit(X, (np.asarray(y) == classes[1]).astype(int),
                      sensitive_features=_group_labels(s))
        X_test, y_test, s_test = test
        groups = _group_labels(s_test)
        label = np.asarray(optimizer.predict(X_test, sensitive_features=groups,
                                             random_state=seed))
        # the probability of a positive decision given the group's (randomised) thresholds
        positive = np.asarray(optimizer._pmf_predict(X_test, sensitive_features=groups))[:, 1]
    label = classes[label.astype(int)]
    proba = np.column_stack([1 - positive, positive])
    truth = np.asarray(y_test)
    scores = {}
    for name in (ev.metric, "accuracy", "balanced_accuracy", "f1"):
        metric = METRICS[name]
        try:
            scores[name] = float(metric(truth, proba if metric.needs_proba else label, classes))
        except ValueError:
            scores[name] = math.nan
    greater = METRICS[ev.metric].greater_is_better
    cost = (ev.score - scores[ev.metric]) * (1 if greater else -1)
    fair = {str(c): group_fairness(
        "binary", truth, label, slice_groups(s_test[c].reset_index(drop=True))[0],
        positive=classes[1], proba=positive, resamples=fairness.resamples, seed=seed,
        min_rows=MIN_SLICE_ROWS) for c in s_test}
    limits = check_limits(fairness.parsed(), fair)
    return {"method": "threshold_optimizer", "constraint": constraint,
            "objective": "balanced_accuracy_score", "fitted_on": f"{len(X)} training rows",
            "metric": ev.metric, "score": scores[ev.metric], "metrics": scores,
            "cost": cost, "limits": limits, "passed": all(r["passed"] for r in limits),
            "fairness": fair, "registered": False,
            "note": "it needs the sensitive column at prediction time, which the model "
                    "package's signature (features only) does not take"}


def check_fairness(fairness: FairnessSpec, model: Any, ev: Evaluation,
                   train: tuple[pd.DataFrame, pd.Series, pd.DataFrame],
                   test: tuple[pd.DataFrame, pd.Series, pd.DataFrame], seed: int
                   ) -> dict[str, Any] | None:
    """The limits on the test split and, when one fails and mitigation is on, the
    mitigated candidate; None without limits.

    Args:
        fairness: the spec's fairness section.
        model: the chosen, fitted model (it takes the feature frame).
        ev: its evaluation on the test split (with ``fairness`` per sensitive column).
        train: (features, target, sensitive columns) of the training split.
        test: the same of the test split.
        seed: seeds the thresholds' randomisation and the bootstrap.
    """
    if not fairness.limits:
        return None
    limits = check_limits(fairness.parsed(), ev.fairness)
    failed = sorted({r["metric"] for r in limits if not r["passed"]})
    result: dict[str, Any] = {"limits": limits, "passed": not failed, "mitigation": None}
    if any(r["value"] is None for r in limits if not r["passed"]):
        # no group large enough to compare on the test split: no thresholds to fit either
        result["note"] = ("a limit's value is undefined (a sensitive column has no group "
                          "with enough test rows to compare), so no mitigated candidate "
                          "was fitted")
    elif failed and fairness.mitigate == "threshold_optimizer":
        result["mitigation"] = _mitigate(fairness, failed, model, ev, train, test, seed)
    return result


def fairness_metrics(ev: Evaluation) -> dict[str, float]:
    """The run's fairness metrics: ``fairness.<metric>.<column>`` for every difference and
    ratio computed, and ``fairness.mitigated.<metric>.<column>`` for a candidate's."""
    out = {f"fairness.{name}.{column}": found["value"]
           for column, result in ev.fairness.items()
           for name, found in result.get("metrics", {}).items() if found.get("value") is not None}
    mitigation = (ev.fairness_limits or {}).get("mitigation")
    if mitigation:
        out.update({f"fairness.mitigated.{r['metric']}.{r['column']}": r["value"]
                    for r in mitigation["limits"] if r["value"] is not None})
        out[f"fairness.mitigated.test_{mitigation['metric']}"] = mitigation["score"]
        out["fairness.mitigated.cost"] = mitigation["cost"]
    return out


def fairness_summary(ev: Evaluation) -> dict[str, str]:
    """One line on the limits (and the mitigated candidate) for the report's summary."""
    checked = ev.fairness_limits
    if not checked:
        return {}
    broken = [f"{r['limit']} on {r['column']} ({figure_text(r['value'])})"
              for r in checked["limits"] if not r["passed"]]
    text = (f"all {len(checked['limits'])} met" if not broken
            else f"{len(broken)} of {len(checked['limits'])} broken: " + "; ".join(broken))
    mitigation = checked.get("mitigation")
    if mitigation:
        text += (f"; threshold-optimised candidate {'meets' if mitigation['passed'] else 'breaks'}"
                 f" them at a cost of {mitigation['cost']:.4f} {mitigation['metric']} "
                 "(not registered)")
    return {"fairness limits": text}
