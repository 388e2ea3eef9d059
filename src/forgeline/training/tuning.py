"""Hyperparameter tuning: Optuna TPE over the models and their spaces, cross-validated.

Trials run in batches of ``n_jobs`` through the engine, and are told back to the study in
trial order, so the result depends on the seed alone, not on timing (a time budget aside).
On a distributed engine (Ray) each CV fold of a batch's trials is a task of its own, so
even one trial at a time keeps ``cv_folds`` CPUs busy; the pruning rule is then applied to
the fold scores in fold order once they are in, which gives the same trials, scores and
states as running the folds one after another (the folds after a pruning point are spent
work, not a different result). The study lives in ``storage`` when one is given (Optuna's
RDB storage, beside the Forgeline store), else in memory.
Each model is first tried with its library's default hyperparameters, the strong and fast
families first (``ModelKind.first``: a default gradient boosting leads), so a short budget
is spent where it pays; with imbalanced classes the leading family is also tried with
balanced class weights, and afterwards ``balanced`` is a hyperparameter like the others.
A trial is pruned when, after its second fold or later, its running mean score is worse
than the median of completed trials at that fold (MedianPruner's rule, applied inside the
worker).

Time: a :class:`Deadline` says when tuning must end (``tuning.timeout_s`` from its start,
and for a whole-run budget, ``tuning.time_budget_s``, the run's end less what the refit
and the evaluation of the trial that would be chosen now will take). Once a trial has completed, a
trial that would run past the deadline stops between folds, and a trial of a family
whose measured cost exceeds the time left is skipped with a note; tuning ends there.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    TimeSeriesSplit,
)
from sklearn.pipeline import Pipeline

from forgeline.data.schema import Schema
from forgeline.data.split import keep_together
from forgeline.engines import Engine
from forgeline.entities import SplitStrategy, Task
from forgeline.errors import ForgelineError
from forgeline.metrics import Metric, get_metric
from forgeline.training.features import build_preprocessor, native_categories
from forgeline.training.selection import Selection, select_model
from forgeline.training.spec import TuningSpec
from forgeline.training.trials import TrialOutcome
from forgeline.training.zoo import ZOO, ModelKind

__all__ = ["BALANCED", "EXPLAIN_SHARE", "PACKAGING_S", "Deadline", "ModelPlan",
           "TuningResult", "cv_folds", "refit_scale", "reserve", "score_model", "tune"]

Folds = list[tuple[np.ndarray, np.ndarray]]
_STARTUP_TRIALS = 5
BALANCED = "balanced"  # the trial parameter that weights the classes
BUDGET_NOTE = "stopped at the time budget"
_PROBE_ROWS = 2000  # rows a family's first trial is timed on before its first fold
EXPLAIN_SHARE = 0.05  # of a whole-run budget, kept for the permutation importance
PACKAGING_S = 5.0  # the model package, the report, the registration (measured: 3-5 s)


def _hyper(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's model hyperparameters (without the class-weight switch)."""
    return {k: v for k, v in params.items() if k != BALANCED}


@dataclass(frozen=True)
class Deadline:
    """When tuning must end, in seconds since the epoch (``time.time()``).

    Attributes:
        fixed: the end of ``tuning.timeout_s``, or None.
        run_end: the end of the whole-run budget ``tuning.time_budget_s``, or None; tuning
            then leaves time for the refit and the evaluation of the best trial so far.
        explain_s: seconds kept on top for the permutation importance, which scales with
            the columns and is cut to fit what is left (see ``evaluate``).
    """

    fixed: float | None = None
    run_end: float | None = None
    explain_s: float = 0.0
    refit_scale: float = 1.0  # the training split's rows over a fold's mean training rows

    def at(self, chosen: TrialOutcome | None) -> float | None:
        """The deadline, given the trial that would be refitted now (None: no limit)."""
        ends = [self.fixed] if self.fixed is not None else []
        if self.run_end is not None:
            ends.append(self.run_end - reserve(chosen, self.refit_scale) - self.explain_s)
        return min(ends) if ends else None


def refit_scale(folds: Folds, rows: int) -> float:
    """How many times a fold's training rows the refit fits: 1.25 for 5-fold CV, 2 for the
    expanding windows of a 5-fold time split (they train on half the rows on average)."""
    return rows / statistics.fmean(len(fit) for fit, _ in folds) if folds else 1.0


def reserve(chosen: TrialOutcome | None, scale: float = 1.0) -> float:
    """Seconds to keep for refitting ``chosen`` on the whole training split and evaluating
    it: a refit costs a fold's fit scaled to all the rows (``scale``), the evaluation on the
    test split (predictions, curves, the newest slice) about as much again."""
    if chosen is None or not chosen.fold_scores:
        return PACKAGING_S
    per_fold = chosen.seconds / len(chosen.fold_scores)
    return 2.0 * per_fold * max(scale, 1.0) + PACKAGING_S


@dataclass(frozen=True)
class ModelPlan:
    """Everything needed to build the same pipeline in any process."""

    task: Task
    schema: Schema
    features: tuple[str, ...]
    metric: str
    seed: int
    imbalanced: bool  # class weights are worth trying (the rarest class under a quarter)
    encoding: str = "auto"
    max_onehot: int = 20

    @property
    def scorer(self) -> Metric:
        return get_metric(self.metric, self.task)

    def pipeline(self, model: str, params: dict[str, Any]) -> Pipeline:
        kind = ZOO[model]
        target_type = {Task.BINARY: "binary", Task.MULTICLASS: "multiclass"}.get(
            self.task, "continuous")
        native = kind.categories is not None and self.encoding == "auto"
        features = build_preprocessor(self.schema, self.features, encoding=self.encoding,
                                      max_onehot=self.max_onehot, dense=kind.dense,
                                      seed=self.seed, target_type=target_type,
                                      native=native)
        estimator = kind.build(self.task, _hyper(params), self.seed,
                               bool(params.get(BALANCED)))
        codes = len(native_categories(self.schema, self.features)) if native else 0
        if codes:
            estimator.set_params(**{kind.categories: list(range(codes))})
        return Pipeline([("features", features), ("model", estimator)])


def score_model(model: Pipeline, X: pd.DataFrame, y: pd.Series, metric: Metric) -> float:
    classes = getattr(model, "classes_", None)
    prediction = model.predict_proba(X) if metric.needs_proba else model.predict(X)
    return metric(np.asarray(y), prediction, classes)


def cv_folds(task: Task, y: pd.Series, n_folds: int, seed: int, *,
             strategy: SplitStrategy | None = None, groups: pd.Series | None = None,
             times: pd.Series | None = None, copies: np.ndarray | None = None) -> Folds:
    """Cross-validation folds inside the training split, matching how it was split off.

    ``copies`` (per row, its group of copies, -1 for none): each group is kept in one fold
    (:func:`forgeline.data.split.keep_together`), so no validation row is a copy of a row
    the model was fitted on.
    """
    index = np.arange(len(y))
    classify = task is not Task.REGRESSION
    if strategy is SplitStrategy.TIME and times is not None:
        order = np.argsort(times.to_numpy(), kind="stable")
        return [(order[a], order[b]) for a, b in TimeSeriesSplit(n_folds).split(order)]
    if groups is not None:
        splitter: Any = (StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
                         if classify else GroupKFold(n_folds))
        return list(splitter.split(index, y, groups))
    splitter = (StratifiedKFold(n_folds, shuffle=True, random_state=seed) if classify
                else KFold(n_folds, shuffle=True, random_state=seed))
    folds = list(splitter.split(index, y))
    if copies is None or not (copies >= 0).any():
        return folds
    fold_of = np.empty(len(y), dtype=np.int64)
    for k, (_, valid) in enumerate(folds):
        fold_of[valid] = k
    fold_of = keep_together(fold_of, copies)
    return [(np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k))
            for k in range(len(folds))]


@dataclass
class TuningResult:
    best: TrialOutcome  # the best mean CV score
    trials: list[TrialOutcome]
    selection: Selection  # the trial to refit (``selection.chosen``) and why

    @property
    def chosen(self) -> TrialOutcome:
        return self.selection.chosen


@dataclass(frozen=True)
class _Job:
    outcome: TrialOutcome
    plan: ModelPlan
    X: pd.DataFrame
    y: pd.Series
    folds: Folds
    thresholds: tuple[float | None, ...]  # per fold: the running-mean median to beat
    deadline: float | None = None  # stop between folds rather than run past it
    probe: bool = False  # its family's cost is unknown: price the first fold on a sample


def _run_trial(job: _Job) -> TrialOutcome:
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
    """What every fold task of a batch shares (sent to the cluster once per batch)."""

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


def _run_fold(shared: _Shared, task: _FoldTask) -> tuple[float | None, str | None, float]:
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


def _assemble(job: _Job, results: Sequence[tuple[float | None, str | None, float]]
              ) -> TrialOutcome:
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


def _run_batch(engine: Engine, jobs: list[_Job],
               fold: Callable[[_FoldTask], tuple[float | None, str | None, float]] | None
               ) -> list[TrialOutcome]:
    """Run a batch of trials: one task per trial, or with ``fold`` (``_run_fold`` bound to
    the data, one object for the whole search, so that a distributed engine sends the data
    once) one task per fold of each trial (see the module docstring)."""
    if not jobs:
        return []
    if fold is None:
        return engine.map(_run_trial, jobs)
    n = len(jobs[0].folds)
    tasks = [_FoldTask(j.outcome.model, j.outcome.params, k, j.deadline)
             for j in jobs for k in range(n)]
    results = engine.map(fold, tasks)
    return [_assemble(j, results[i * n:(i + 1) * n]) for i, j in enumerate(jobs)]


def trials_at_once(n_jobs: int, engine: Engine, n_folds: int) -> int:
    """Trials per batch: ``n_jobs``; -1: one per core of the local engine, or on a
    distributed engine as many as its CPUs hold with a task per fold (at least 1)."""
    if n_jobs > 0:
        return n_jobs
    return max(1, engine.n_jobs // n_folds) if engine.distributed else engine.n_jobs


def _first_fold_s(job: _Job) -> float:
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


def _thresholds(done: Sequence[TrialOutcome], n_folds: int, pruning: bool
                ) -> tuple[float | None, ...]:
    complete = [t for t in done if t.state == "complete"]
    if not pruning or len(complete) < _STARTUP_TRIALS:
        return (None,) * n_folds
    return tuple(statistics.median(float(np.mean(t.fold_scores[: step + 1])) for t in complete)
                 for step in range(n_folds))


def _params(trial: optuna.Trial, kinds: Sequence[ModelKind], default: dict[str, Any] | None,
            imbalanced: bool) -> tuple[str, dict[str, Any]]:
    """The model and its parameters: the library's defaults for a default trial (with
    balanced class weights when it says so), else sampled from the family's space."""
    names = [k.name for k in kinds]
    model = trial.suggest_categorical("model", names) if len(names) > 1 else names[0]
    if default is not None:
        return model, {BALANCED: True} if default.get(BALANCED) else {}
    params = ZOO[model].space(trial)
    if imbalanced:
        params[BALANCED] = trial.suggest_categorical(BALANCED, [False, True])
    return model, params


def _defaults(kinds: Sequence[ModelKind], imbalanced: bool, trials: int
              ) -> list[dict[str, Any]]:
    """The default trials, in the order they run: each family's defaults, the strong and
    fast ones first, and the leader again with balanced class weights when imbalanced."""
    ordered = [{"model": k.name} for k in sorted(kinds, key=lambda k: k.first)]
    if imbalanced:
        ordered.insert(1, {**ordered[0], BALANCED: True})
    return ordered[:trials]


def _too_slow(kind: str, done: Sequence[TrialOutcome], n_folds: int, left: float
              ) -> str | None:
    """Why a trial of ``kind`` is skipped: its family's measured cost exceeds ``left``."""
    spent = [t.seconds / len(t.fold_scores) for t in done if t.model == kind and t.fold_scores]
    if not spent:
        return None
    cost = statistics.median(spent) * n_folds
    if cost <= left:
        return None
    return (f"skipped: a {kind} trial takes about {cost:.0f} s and {max(left, 0):.0f} s "
            "of the time budget are left")


def tune(plan: ModelPlan, kinds: Sequence[ModelKind], X: pd.DataFrame, y: pd.Series,
         folds: Folds, spec: TuningSpec, engine: Engine,
         on_trial: Callable[[TrialOutcome, TrialOutcome | None], None] | None = None, *,
         deadline: Deadline | None = None, storage: str | None = None,
         study_name: str | None = None) -> TuningResult:
    """Search ``spec.trials`` trials (or until the deadline); choose the model to refit by
    ``spec.select`` (see :mod:`forgeline.training.selection`).

    Args:
        deadline: when tuning must end; by default ``spec.timeout_s`` from now.
        storage: an Optuna storage URL for the study (None: in memory).
        study_name: the study's name in ``storage`` (a new one: tuning starts afresh).
        on_trial: ``on_trial(outcome, best_so_far)``, called in trial order, in this
            process.
    """
    metric = plan.scorer
    if deadline is None:
        deadline = Deadline(fixed=None if spec.timeout_s is None
                            else time.time() + spec.timeout_s)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=plan.seed, multivariate=True, group=True,
                                             n_startup_trials=max(5, len(kinds)))
    study = optuna.create_study(direction="maximize" if metric.greater_is_better
                                else "minimize", sampler=sampler, storage=storage,
                                study_name=study_name)
    defaults = _defaults(kinds, plan.imbalanced, spec.trials)
    for default in defaults:
        if len(kinds) > 1:
            study.enqueue_trial({"model": default["model"]})
    done: list[TrialOutcome] = []
    best: TrialOutcome | None = None
    ordered = _expanding(folds)
    at_once = trials_at_once(spec.n_jobs, engine, len(folds))
    fold = (functools.partial(_run_fold, _Shared(plan, X, y, folds)) if engine.distributed
            else None)
    while len(done) < spec.trials:
        end = deadline.at(None if best is None
                          else _select(done, metric, spec.select, ordered, best).chosen)
        if end is not None and time.time() >= end and best is not None:
            break
        thresholds = _thresholds(done, len(folds), spec.pruning)
        batch = []
        for _ in range(min(at_once, spec.trials - len(done))):
            trial = study.ask()
            number = trial.number
            default = defaults[number] if number < len(defaults) else None
            model, params = _params(trial, kinds, default, plan.imbalanced)
            outcome = TrialOutcome(number, model, params, defaults=default is not None)
            skip = None if end is None or best is None else _too_slow(
                model, done, len(folds), end - time.time())
            if skip is not None:
                outcome.state, outcome.error = "pruned", skip
            measured = any(t.model == model and t.fold_scores for t in done)
            batch.append((trial, _Job(outcome, plan, X, y, folds, thresholds,
                                      None if best is None else end, probe=not measured)))
        ran = _run_batch(engine, [j for _, j in batch if j.outcome.error is None], fold)
        results = iter(ran)
        for trial, job in batch:
            outcome = job.outcome if job.outcome.error is not None else next(results)
            for step, _ in enumerate(outcome.fold_scores):
                trial.report(float(np.mean(outcome.fold_scores[: step + 1])), step)
            if outcome.state == "complete":
                study.tell(trial, outcome.score)
                if best is None or metric.better(outcome.score, best.score):  # type: ignore[arg-type]
                    best = outcome
            else:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED
                           if outcome.state == "pruned" else optuna.trial.TrialState.FAIL)
            done.append(outcome)
            if on_trial is not None:
                on_trial(outcome, best)
    if best is None:
        first = next((t.error for t in done if t.error), "no trial finished")
        raise ForgelineError(f"Tuning failed: every trial failed ({first}).",
                             hint="Check the data and the models in the spec.")
    return TuningResult(best, done, _select(done, metric, spec.select, ordered, best))


def _expanding(folds: Folds) -> bool:
    """Whether the folds are expanding time windows (each trains on more rows than the one
    before; k-fold folds differ by a row at most)."""
    sizes = [len(fit) for fit, _ in folds]
    return len(sizes) > 1 and all(b > a + 1 for a, b in itertools.pairwise(sizes))


def _select(done: Sequence[TrialOutcome], metric: Metric, rule: str, ordered: bool,
            best: TrialOutcome) -> Selection:
    try:
        return select_model(done, metric, rule, time_ordered=ordered)
    except ValueError:  # no complete trial has a finite score: keep the first complete one
        return Selection(rule, best, best, (), None,
                         f"no complete trial has a finite cv {metric.name}")
