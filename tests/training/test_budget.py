"""The time kept for the refit and the evaluation under a whole-run budget."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from forgeline.data.inference import infer_schema
from forgeline.entities import SplitStrategy, Task
from forgeline.training.plan import ModelPlan, cv_folds
from forgeline.training.running import TrialJob, _first_fold_s, _next_fold_s, _run_trial
from forgeline.training.trials import TrialOutcome
from forgeline.training.tuning import PACKAGING_S, Deadline, _expanding, refit_scale, reserve


def test_the_refit_scale_follows_the_folds() -> None:
    y = pd.Series(np.arange(600.0))
    kfold = cv_folds(Task.REGRESSION, y, 5, seed=0)
    assert refit_scale(kfold, len(y)) == pytest.approx(1.25)
    times = pd.Series(pd.date_range("2020-01-01", periods=600, freq="h"))
    windows = cv_folds(Task.REGRESSION, y, 5, seed=0, strategy=SplitStrategy.TIME, times=times)
    assert refit_scale(windows, len(y)) == pytest.approx(2.0)  # 1..5 sixths: half on average
    # and only the windows are told apart as time-ordered (no one-SE trade on them)
    assert _expanding(windows) and not _expanding(kfold)
    assert not _expanding(cv_folds(Task.REGRESSION, y[:601], 2, seed=0))  # 300 / 301 rows


def test_the_reserve_is_for_the_trial_that_would_be_refitted() -> None:
    slow = TrialOutcome(0, "random_forest", {}, [0.9] * 5, seconds=50.0)  # 10 s a fold
    fast = TrialOutcome(1, "linear", {}, [0.8] * 5, seconds=5.0)
    assert reserve(None) == PACKAGING_S
    assert reserve(slow, 2.0) == pytest.approx(2 * 10 * 2 + PACKAGING_S)
    assert reserve(fast, 1.25) == pytest.approx(2 * 1 * 1.25 + PACKAGING_S)
    deadline = Deadline(run_end=1000.0, explain_s=6.0, refit_scale=2.0)
    assert deadline.at(slow) == pytest.approx(1000 - 40 - PACKAGING_S - 6)
    assert deadline.at(fast) == pytest.approx(1000 - 4 - PACKAGING_S - 6)
    assert Deadline(fixed=900.0, run_end=1000.0).at(fast) == 900.0
    assert Deadline().at(slow) is None


def test_the_next_fold_is_priced_by_its_training_rows() -> None:
    """A trial stops between folds when the next one would end past the deadline; on a
    time split the next window trains on more rows than any before it (1, 2, ... sixths),
    so it costs the last fold's time scaled up, not the mean of the folds so far."""
    y = pd.Series(np.arange(600.0))
    times = pd.Series(pd.date_range("2020-01-01", periods=600, freq="h"))
    windows = cv_folds(Task.REGRESSION, y, 5, seed=0, strategy=SplitStrategy.TIME, times=times)
    ten_s_ago = time.perf_counter() - 10.0
    assert _next_fold_s(windows, 0, ten_s_ago) == pytest.approx(20.0, rel=0.01)
    assert _next_fold_s(windows, 3, ten_s_ago) == pytest.approx(12.5, rel=0.01)  # 5/4
    kfold = cv_folds(Task.REGRESSION, y, 5, seed=0)
    assert _next_fold_s(kfold, 0, ten_s_ago) == pytest.approx(10.0, rel=0.01)


def test_a_family_too_slow_for_the_time_left_is_skipped_before_its_first_fold() -> None:
    """A fold cannot be stopped once started: the first trial of a family not timed yet is
    timed on a sample first, and skipped when its first fold would end past the deadline
    (a random forest on the first window of a large time split took 88 s of a 120 s
    budget before this)."""
    rng = np.random.default_rng(0)
    n = 60_000
    data = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                         "c": rng.choice(list("xyz"), n)})
    y = pd.Series(data["a"] * 2 + rng.normal(size=n), name="y")
    schema = infer_schema(data.assign(y=y), "y")
    plan = ModelPlan(Task.REGRESSION, schema, ("a", "b", "c"), "rmse", 0, False)
    folds = cv_folds(Task.REGRESSION, y, 5, seed=0)
    job = TrialJob(TrialOutcome(3, "random_forest", {}), plan, data, y, folds, (None,) * 5,
               deadline=time.time() + 3.0, probe=True)
    started = time.perf_counter()
    outcome = _run_trial(job)
    assert outcome.state == "pruned" and not outcome.fold_scores, outcome.error
    assert outcome.error.startswith("skipped: a random_forest fold would take about")
    assert time.perf_counter() - started < 3.0  # the probe, not a fold
    small = TrialJob(TrialOutcome(4, "linear", {}), plan, data.head(3000), y.head(3000),
                 cv_folds(Task.REGRESSION, y.head(3000), 5, seed=0), (None,) * 5)
    assert _first_fold_s(small) == 0.0  # a fold of 2,400 rows is not worth a probe
