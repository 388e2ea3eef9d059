"""How trials run: a task per trial (its folds one after another, pruned between them,
stopped at the deadline), or on a distributed engine a task per fold of each trial.

With a task per fold, the pruning rule is applied to the fold scores in fold order once
they are in, which gives the same scores, pruning point and state as the folds run one
after another: the folds after a pruning point are spent work, not a different result. A
fold task does not start past the deadline. The folds' data is bound into one function
(:func:`fold_runner`) for the whole search, so that a distributed engine sends it once.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeline.engines import Engine
from forgeline.metrics import Metric
from forgeline.training.plan import Folds, ModelPlan, score_model
from forgeline.training.trials import TrialOutcome

__all__ = ["BUDGET_NOTE", "FoldRunner", "TrialJob", "fold_runner", "run_batch",
           "trials_at_once"]

BUDGET_NOTE = "stopped at the time budget"
_PROBE_ROWS = 2000  # rows a family's first trial is timed on before its first fold
FoldResult = tuple[float | None, str | None, float]  # score, why none, seconds


@dataclass(frozen=True)
class TrialJob:
    outcome: TrialOutcome
    plan: ModelPlan
    X: pd.DataFrame
    y: pd.Series
    folds: Folds
    thresholds: tuple[float | None, ...]  # per fold: the running-mean median to beat
    deadline: float | None = None  # stop between folds rather than run past it
    probe: bool = False  # its family's cost is unknown: price the first fold on a sample


def _run_trial(job: TrialJob) -> TrialOutcome:
    """Cross-validate one trial (in a worker process when trials run in parallel)."""
    outcome, metric = job.outcome, job.plan.scorer
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from trial settings
        try:
            if job.probe and job.deadline is not None:
                first = _first_fold_s(job)
                if time.time() + first > job.deadline:
                    outcome.state, outcome.error = "pruned", (
                        f"skipped: a {outcome.model} fold would take about {first:.0f} s "
                        f"(timed on {_PROBE_ROWS:,} rows) and "
                        f"{max(job.deadline - time.time(), 0):.0f} s of the time budget "
                        "are left")
                    outcome.seconds = time.perf_counter() - started
                    return outcome
            for step, (train, valid) in enumerate(job.folds):
                fold_started = time.perf_counter()
                model = job.plan.pipeline(outcome.model, outcome.params)
                model.fit(job.X.iloc[train], job.y.iloc[train])
                outcome.fold_scores.append(score_model(model, job.X.iloc[valid],
                                                       job.y.iloc[valid], metric))
                if _prunes(job.thresholds, outcome.fold_scores, len(job.folds), metric):
                    outcome.state = "pruned"
                    break
                if (job.deadline is not None and step < len(job.folds) - 1
                        and time.time() + _next_fold_s(job.folds, step, fold_started)
                        > job.deadline):
                    outcome.state, outcome.error = "pruned", (
                        f"{BUDGET_NOTE} after {step + 1} of {len(job.folds)} folds")
                    break
        except Exception as e:  # a setting that breaks a model fails the trial, not the run
            outcome.state, outcome.error = "failed", f"{type(e).__name__}: {e}"
    outcome.seconds = time.perf_counter() - started
    return outcome


def _prunes(thresholds: tuple[float | None, ...], scores: list[float], n_folds: int,
            metric: Metric) -> bool:
    """MedianPruner's rule after the fold that gave ``scores[-1]``: from the second fold
    to the one before last, a running mean worse than the median of completed trials'."""
    step = len(scores) - 1
    bar = thresholds[step]
    return (bar is not None and 1 <= step < n_folds - 1
            and metric.better(bar, float(np.mean(scores))))


@dataclass(frozen=True)
class _Shared:
    """What every fold task of a search shares."""

    plan: ModelPlan
    X: pd.DataFrame
    y: pd.Series
    folds: Folds


@dataclass(frozen=True)
class _FoldTask:
    model: str
    params: dict[str, Any]
    fold: int
    deadline: float | None  # not started past it


def _run_fold(shared: _Shared, task: _FoldTask) -> FoldResult:
    """One fold of one trial (a task on a distributed engine): its score, or why it has
    none (an error, or :data:`BUDGET_NOTE` when the deadline had passed), and its seconds."""
    if task.deadline is not None and time.time() >= task.deadline:
        return None, BUDGET_NOTE, 0.0
    started = time.perf_counter()
    train, valid = shared.folds[task.fold]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = shared.plan.pipeline(task.model, task.params)
            model.fit(shared.X.iloc[train], shared.y.iloc[train])
            score = score_model(model, shared.X.iloc[valid], shared.y.iloc[valid],
                                shared.plan.scorer)
        except Exception as e:  # as in _run_trial: the trial fails, not the run
            return None, f"{type(e).__name__}: {e}", time.perf_counter() - started
    return score, None, time.perf_counter() - started


def _assemble(job: TrialJob, results: Sequence[FoldResult]) -> TrialOutcome:
    """A trial's outcome from its folds' results, walked in fold order as
    :func:`_run_trial` runs them: the same scores, pruning point and state."""
    outcome, metric, n = job.outcome, job.plan.scorer, len(job.folds)
    for step, (score, error, _) in enumerate(results):
        if error == BUDGET_NOTE:
            outcome.state, outcome.error = "pruned", (
                f"{BUDGET_NOTE} after {step} of {n} folds")
            break
        if error is not None:
            outcome.state, outcome.error = "failed", error
            break
        outcome.fold_scores.append(float(score))  # type: ignore[arg-type]
        if _prunes(job.thresholds, outcome.fold_scores, n, metric):
            outcome.state = "pruned"
            break
    outcome.seconds = sum(r[2] for r in results)
    return outcome


def run_batch(engine: Engine, jobs: list[TrialJob], fold: FoldRunner | None
              ) -> list[TrialOutcome]:
    """Run a batch of trials: one task per trial, or with ``fold`` (:func:`fold_runner`)
    one task per fold of each trial."""
    if not jobs:
        return []
    if fold is None:
        return engine.map(_run_trial, jobs)
    folds = jobs[0].folds
    n = len(folds)
    # The largest folds first (the expanding windows of a time split fit 1, 2, ... k parts):
    # a worker that is given a small fold last finishes with the others, not after them.
    order = sorted(range(n), key=lambda k: -len(folds[k][0]))
    tasks = [(i, k) for k in order for i in range(len(jobs))]
    results = engine.map(fold, [_FoldTask(jobs[i].outcome.model, jobs[i].outcome.params, k,
                                          jobs[i].deadline) for i, k in tasks])
    by_trial: list[list[FoldResult]] = [[None] * n for _ in jobs]  # type: ignore[list-item]
    for (i, k), result in zip(tasks, results, strict=True):
        by_trial[i][k] = result
    return [_assemble(j, by_trial[i]) for i, j in enumerate(jobs)]


def trials_at_once(n_jobs: int, engine: Engine, n_folds: int) -> int:
    """Trials per batch: ``n_jobs``; -1: one per core of the local engine, or on a
    distributed engine as many as its CPUs hold with a task per fold (at least 1)."""
    if n_jobs > 0:
        return n_jobs
    return max(1, engine.n_jobs // n_folds) if engine.distributed else engine.n_jobs


def _first_fold_s(job: TrialJob) -> float:
    """What the first fold will take, from a fit on ``_PROBE_ROWS`` of its rows scaled by
    n log n (a fold cannot be stopped once started; a family too slow for the time left,
    a random forest on a large table say, is skipped instead)."""
    train = job.folds[0][0]
    if len(train) <= 2 * _PROBE_ROWS:
        return 0.0
    sample = train[np.linspace(0, len(train) - 1, _PROBE_ROWS).astype(int)]
    model = job.plan.pipeline(job.outcome.model, job.outcome.params)
    started = time.perf_counter()
    try:
        model.fit(job.X.iloc[sample], job.y.iloc[sample])
    except Exception:  # a sample can miss a class: the folds will tell
        return 0.0
    took = time.perf_counter() - started
    return took * len(train) / _PROBE_ROWS * math.log(len(train)) / math.log(_PROBE_ROWS)


def _next_fold_s(folds: Folds, step: int, fold_started: float) -> float:
    """What the fold after ``step`` will take: this one's time scaled by its training rows
    (the expanding windows of a time split grow: the next one costs more than the mean)."""
    rows = len(folds[step + 1][0]) / max(len(folds[step][0]), 1)
    return (time.perf_counter() - fold_started) * max(rows, 1.0)


FoldRunner = Callable[[_FoldTask], FoldResult]


def fold_runner(plan: ModelPlan, X: pd.DataFrame, y: pd.Series, folds: Folds) -> FoldRunner:
    """The fold task function with the search's data bound in (one object per search)."""
    return functools.partial(_run_fold, _Shared(plan, X, y, folds))
