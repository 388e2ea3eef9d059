"""A distributed engine runs each CV fold as a task of its own; the trial assembled from
its folds is the one the sequential run gives: the same scores, pruning point and state."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from forgeline.data.inference import infer_schema
from forgeline.engines import LocalEngine
from forgeline.entities import SplitStrategy, Task
from forgeline.training.plan import ModelPlan, cv_folds
from forgeline.training.running import (
    TrialJob,
    _assemble,
    _FoldTask,
    _run_fold,
    _run_trial,
    _Shared,
    fold_runner,
    run_batch,
    trials_at_once,
)
from forgeline.training.trials import TrialOutcome


@pytest.fixture(scope="module")
def job() -> TrialJob:
    rng = np.random.default_rng(1)
    n = 1_200
    data = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                         "c": rng.choice(list("xyz"), n)})
    y = pd.Series((data["a"] + rng.normal(0, 0.7, n) > 0).astype(int), name="y")
    plan = ModelPlan(Task.BINARY, infer_schema(data.assign(y=y), "y"), ("a", "b", "c"),
                     "roc_auc", 0, False)
    folds = cv_folds(Task.BINARY, y, 4, seed=0)
    return TrialJob(TrialOutcome(0, "logistic_regression", {"C": 0.5}), plan, data, y, folds,
                (None,) * 4)


def _fresh(job: TrialJob, **changes: object) -> TrialJob:
    outcome = TrialOutcome(job.outcome.number, job.outcome.model, dict(job.outcome.params))
    return dataclasses.replace(job, outcome=outcome, **changes)


def _by_folds(job: TrialJob) -> TrialOutcome:
    shared = _Shared(job.plan, job.X, job.y, job.folds)
    return _assemble(job, [_run_fold(shared, _FoldTask(job.outcome.model, job.outcome.params,
                                                       k, job.deadline))
                           for k in range(len(job.folds))])


@pytest.mark.parametrize("thresholds", [(None,) * 4, (0.0, 0.0, 0.0, 0.0),
                                        (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0)])
def test_a_trial_from_its_folds_equals_the_sequential_trial(job: TrialJob, thresholds: tuple
                                                            ) -> None:
    sequential = _run_trial(_fresh(job, thresholds=thresholds))
    assembled = _by_folds(_fresh(job, thresholds=thresholds))
    assert (assembled.state, assembled.fold_scores, assembled.error) == (
        sequential.state, sequential.fold_scores, sequential.error)
    if thresholds[1] == 1.0:  # no AUC beats 1: pruned after the second fold
        assert assembled.state == "pruned" and len(assembled.fold_scores) == 2
    if thresholds == (0.0, 0.0, 1.0, 1.0):
        assert assembled.state == "pruned" and len(assembled.fold_scores) == 3
    if thresholds[2] in (None, 0.0):
        assert assembled.state == "complete" and len(assembled.fold_scores) == 4


def test_a_failing_setting_and_a_passed_deadline_read_as_in_the_sequential_run(job: TrialJob
                                                                                ) -> None:
    bad = _fresh(job)
    bad.outcome.params["C"] = -1.0  # scikit-learn refuses it in every fold
    assert _by_folds(bad).state == _run_trial(_fresh(bad)).state == "failed"
    assert _by_folds(bad).error == _run_trial(_fresh(bad)).error
    late = _by_folds(_fresh(job, deadline=0.0))
    assert late.state == "pruned" and not late.fold_scores
    assert late.error == "stopped at the time budget after 0 of 4 folds"


class _Spread(LocalEngine):
    distributed = True  # as Ray: the batch goes out a task per fold


def test_a_batch_spread_by_folds_gives_each_trial_its_own_outcome(job: TrialJob) -> None:
    jobs = [_fresh(job), _fresh(dataclasses.replace(job, outcome=TrialOutcome(
        1, "logistic_regression", {"C": 0.01})))]
    fold = fold_runner(job.plan, job.X, job.y, job.folds)
    spread = run_batch(_Spread(2, workers="threads"), [_fresh(j) for j in jobs], fold)
    alone = [_run_trial(_fresh(j)) for j in jobs]
    assert [o.fold_scores for o in spread] == [o.fold_scores for o in alone]
    assert spread[0].fold_scores != spread[1].fold_scores
    assert trials_at_once(-1, _Spread(8), 4) == 2 and trials_at_once(-1, _Spread(3), 4) == 1
    assert trials_at_once(-1, LocalEngine(3), 4) == 3 and trials_at_once(2, _Spread(8), 4) == 2


def test_expanding_windows_go_out_largest_first_and_come_back_in_fold_order(job: TrialJob
                                                                            ) -> None:
    times = pd.Series(pd.date_range("2024-01-01", periods=len(job.y), freq="h"))
    windows = cv_folds(Task.BINARY, job.y, 4, seed=0, strategy=SplitStrategy.TIME,
                       times=times)
    timed = dataclasses.replace(job, folds=windows)
    sent: list[int] = []

    class _Watching(_Spread):
        def map(self, fn, tasks, on_done=None):  # type: ignore[no-untyped-def]
            tasks = list(tasks)
            sent.extend(t.fold for t in tasks)
            return super().map(fn, tasks, on_done)

    jobs = [_fresh(timed), _fresh(dataclasses.replace(timed, outcome=TrialOutcome(
        1, "logistic_regression", {"C": 0.01})))]
    spread = run_batch(_Watching(2, workers="threads"), jobs,
                       fold_runner(timed.plan, timed.X, timed.y, windows))
    assert sent == [3, 3, 2, 2, 1, 1, 0, 0]  # the largest training window first
    alone = [_run_trial(_fresh(j)) for j in jobs]
    assert [o.fold_scores for o in spread] == [o.fold_scores for o in alone]
