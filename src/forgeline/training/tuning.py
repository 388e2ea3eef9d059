"""Hyperparameter tuning: Optuna TPE over the models and their spaces, cross-validated.

Trials run in batches of ``n_jobs`` through the engine, and are told back to the study in
trial order, so the result depends on the seed alone, not on timing (a time budget aside).
On a distributed engine (Ray) each CV fold of a batch's trials is a task of its own, so
even one trial at a time keeps ``cv_folds`` CPUs busy, with the same outcome
(:mod:`forgeline.training.running`). The study lives in ``storage`` when one is given
(Optuna's RDB storage, beside the Forgeline store), else in memory.
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

import itertools
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd

from forgeline.engines import Engine
from forgeline.errors import ForgelineError
from forgeline.metrics import Metric
from forgeline.training.plan import BALANCED, Folds, ModelPlan, cv_folds, score_model
from forgeline.training.running import TrialJob, fold_runner, run_batch, trials_at_once
from forgeline.training.selection import Selection, select_model
from forgeline.training.spec import TuningSpec
from forgeline.training.trials import TrialOutcome
from forgeline.training.zoo import ZOO, ModelKind

__all__ = ["BALANCED", "EXPLAIN_SHARE", "PACKAGING_S", "Deadline", "ModelPlan",
           "TuningResult", "cv_folds", "refit_scale", "reserve", "score_model", "tune"]

_STARTUP_TRIALS = 5
EXPLAIN_SHARE = 0.05  # of a whole-run budget, kept for the permutation importance
PACKAGING_S = 5.0  # the model package, the report, the registration (measured: 3-5 s)


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


@dataclass
class TuningResult:
    best: TrialOutcome  # the best mean CV score
    trials: list[TrialOutcome]
    selection: Selection  # the trial to refit (``selection.chosen``) and why

    @property
    def chosen(self) -> TrialOutcome:
        return self.selection.chosen


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
    fold = fold_runner(plan, X, y, folds) if engine.distributed else None
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
            batch.append((trial, TrialJob(outcome, plan, X, y, folds, thresholds,
                                      None if best is None else end, probe=not measured)))
        ran = run_batch(engine, [j for _, j in batch if j.outcome.error is None], fold)
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
