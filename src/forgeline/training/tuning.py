"""Hyperparameter tuning: Optuna TPE over the models and their spaces, cross-validated.

Trials run in batches of ``n_jobs`` through the engine, and are told back to the study in
trial order, so the result depends on the seed alone, not on timing. Each model is first
tried with its default hyperparameters. A trial is pruned when, after its second fold or
later, its running mean score is worse than the median of completed trials at that fold
(MedianPruner's rule, applied inside the worker).
"""

from __future__ import annotations

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
from forgeline.engines import Engine
from forgeline.entities import SplitStrategy, Task
from forgeline.errors import ForgelineError
from forgeline.metrics import Metric, get_metric
from forgeline.training.features import build_preprocessor
from forgeline.training.selection import Selection, select_model
from forgeline.training.spec import TuningSpec
from forgeline.training.trials import TrialOutcome
from forgeline.training.zoo import ZOO, ModelKind

__all__ = ["ModelPlan", "TuningResult", "cv_folds", "score_model", "tune"]

Folds = list[tuple[np.ndarray, np.ndarray]]
_STARTUP_TRIALS = 5


@dataclass(frozen=True)
class ModelPlan:
    """Everything needed to build the same pipeline in any process."""

    task: Task
    schema: Schema
    features: tuple[str, ...]
    metric: str
    seed: int
    weighted: bool
    encoding: str = "auto"
    max_onehot: int = 20

    @property
    def scorer(self) -> Metric:
        return get_metric(self.metric, self.task)

    def pipeline(self, model: str, params: dict[str, Any]) -> Pipeline:
        kind = ZOO[model]
        target_type = {Task.BINARY: "binary", Task.MULTICLASS: "multiclass"}.get(
            self.task, "continuous")
        features = build_preprocessor(self.schema, self.features, encoding=self.encoding,
                                      max_onehot=self.max_onehot, dense=kind.dense,
                                      seed=self.seed, target_type=target_type)
        return Pipeline([("features", features),
                         ("model", kind.build(self.task, params, self.seed, self.weighted))])


def score_model(model: Pipeline, X: pd.DataFrame, y: pd.Series, metric: Metric) -> float:
    classes = getattr(model, "classes_", None)
    prediction = model.predict_proba(X) if metric.needs_proba else model.predict(X)
    return metric(np.asarray(y), prediction, classes)


def cv_folds(task: Task, y: pd.Series, n_folds: int, seed: int, *,
             strategy: SplitStrategy | None = None, groups: pd.Series | None = None,
             times: pd.Series | None = None) -> Folds:
    """Cross-validation folds inside the training split, matching how it was split off."""
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
    return list(splitter.split(index, y))


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


def _run_trial(job: _Job) -> TrialOutcome:
    """Cross-validate one trial (in a worker process when trials run in parallel)."""
    outcome, metric = job.outcome, job.plan.scorer
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from trial settings
        try:
            for step, (train, valid) in enumerate(job.folds):
                model = job.plan.pipeline(outcome.model, outcome.params)
                model.fit(job.X.iloc[train], job.y.iloc[train])
                outcome.fold_scores.append(score_model(model, job.X.iloc[valid],
                                                       job.y.iloc[valid], metric))
                bar = job.thresholds[step]
                if bar is not None and step >= 1 and step < len(job.folds) - 1 \
                        and metric.better(bar, float(np.mean(outcome.fold_scores))):
                    outcome.state = "pruned"
                    break
        except Exception as e:  # a setting that breaks a model fails the trial, not the run
            outcome.state, outcome.error = "failed", f"{type(e).__name__}: {e}"
    outcome.seconds = time.perf_counter() - started
    return outcome


def _thresholds(done: Sequence[TrialOutcome], n_folds: int, pruning: bool
                ) -> tuple[float | None, ...]:
    complete = [t for t in done if t.state == "complete"]
    if not pruning or len(complete) < _STARTUP_TRIALS:
        return (None,) * n_folds
    return tuple(statistics.median(float(np.mean(t.fold_scores[: step + 1])) for t in complete)
                 for step in range(n_folds))


def _params(trial: optuna.Trial, kinds: Sequence[ModelKind], defaults: bool
            ) -> tuple[str, dict[str, Any]]:
    names = [k.name for k in kinds]
    model = trial.suggest_categorical("model", names) if len(names) > 1 else names[0]
    return model, ({} if defaults else ZOO[model].space(trial))


def tune(plan: ModelPlan, kinds: Sequence[ModelKind], X: pd.DataFrame, y: pd.Series,
         folds: Folds, spec: TuningSpec, engine: Engine,
         on_trial: Callable[[TrialOutcome, TrialOutcome | None], None] | None = None
         ) -> TuningResult:
    """Search ``spec.trials`` trials (or until ``spec.timeout_s``); choose the model to
    refit by ``spec.select`` (see :mod:`forgeline.training.selection`).

    ``on_trial(outcome, best_so_far)`` is called in trial order, in this process.
    """
    metric = plan.scorer
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=plan.seed, multivariate=True, group=True,
                                             n_startup_trials=max(5, len(kinds)))
    study = optuna.create_study(direction="maximize" if metric.greater_is_better
                                else "minimize", sampler=sampler)
    defaults = [k.name for k in kinds] if spec.trials >= 2 * len(kinds) else []
    for name in defaults:
        if len(kinds) > 1:
            study.enqueue_trial({"model": name})
    done: list[TrialOutcome] = []
    best: TrialOutcome | None = None
    started = time.monotonic()
    while len(done) < spec.trials and (spec.timeout_s is None
                                       or time.monotonic() - started < spec.timeout_s):
        thresholds = _thresholds(done, len(folds), spec.pruning)
        batch = []
        for _ in range(min(engine.n_jobs, spec.trials - len(done))):
            trial = study.ask()
            is_default = trial.number < len(defaults)
            model, params = _params(trial, kinds, is_default)
            batch.append((trial, _Job(TrialOutcome(trial.number, model, params,
                                                   defaults=is_default),
                                      plan, X, y, folds, thresholds)))
        for (trial, _), outcome in zip(batch, engine.map(_run_trial, [j for _, j in batch]),
                                       strict=True):
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
    try:
        selection = select_model(done, metric, spec.select)
    except ValueError:  # no complete trial has a finite score: keep the first complete one
        selection = Selection(spec.select, best, best, (), None,
                              f"no complete trial has a finite cv {metric.name}")
    return TuningResult(best, done, selection)
