"""Metric series for charts and the keys runs use, against every backend.

Each series test also runs the Store base class's default implementation (built on
get_metric_history) over the same backend, so both keep the same contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from forgeline.entities import MetricSeries, RunKeys
from forgeline.errors import InvalidInput, NotFound
from forgeline.store import Store, get_store

Series = Callable[..., MetricSeries]
LONG = 50_000
LOW_STEP, HIGH_STEP = 12_345, 31_337  # where the long series has its extremes
NAN_STEPS = range(40_000, 40_150)


@pytest.fixture
def store(store_uri: str) -> Store:
    return get_store(store_uri)


@pytest.fixture
def run_id(store: Store) -> str:
    exp = store.create_experiment("charts").experiment_id
    return store.create_run(exp, "long", 1000).run_id


def _both(store: Store) -> list[Series]:
    """The backend's own implementation, and the base class's default."""
    return [store.get_metric_series,
            lambda *a, **k: Store.get_metric_series(store, *a, **k)]


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_a_short_series_comes_back_exactly(store: Store, run_id: str) -> None:
    points = [("loss", 0.5, 0, 10), ("loss", math.nan, 1, 11), ("loss", math.inf, 2, 12),
              ("loss", 0.25, 2, 13), ("loss", -math.inf, 5, 14), ("loss", 0.125, 9, 15)]
    store.log_batch(run_id, metrics=points)
    history = store.get_metric_history(run_id, "loss")
    for series in _both(store):
        found = series(run_id, "loss")
        assert found.steps == tuple(m.step for m in history) == (0, 1, 2, 2, 5, 9)
        assert all(map(_same, found.values, [m.value for m in history]))
        assert found.total == 6 and not found.downsampled
        assert series(run_id, "loss", max_points=6).steps == found.steps
        some = series(run_id, "loss", min_step=1, max_step=5)
        assert some.steps == (1, 2, 2, 5) and some.total == 4 and not some.downsampled
        assert series(run_id, "loss", min_step=6, max_step=8) == MetricSeries((), (), 0, False)


def _long_value(step: int) -> float:
    if step == LOW_STEP:
        return -100.0
    if step == HIGH_STEP:
        return 100.0
    return math.nan if step in NAN_STEPS else math.sin(step / 500) + step / LONG


def _check_shape(found: MetricSeries, max_points: int, first: int, last: int) -> None:
    assert found.downsampled and 4 <= len(found.steps) <= max_points
    assert len(found.values) == len(found.steps)
    assert list(found.steps) == sorted(found.steps)
    assert found.steps[0] == first and found.steps[-1] == last
    for step, value in zip(found.steps, found.values, strict=True):
        assert _same(value, _long_value(step))  # real points, not averages


def test_a_long_series_keeps_its_shape_and_zooms_to_exact_points(store: Store,
                                                                  run_id: str) -> None:
    for start in range(0, LONG, 10_000):
        store.log_batch(run_id, metrics=[("loss", _long_value(s), s, 1000 + s)
                                         for s in range(start, start + 10_000)])
    for series in _both(store):
        for max_points in (2000, 100):
            found = series(run_id, "loss", max_points=max_points)
            assert found.total == LONG
            _check_shape(found, max_points, 0, LONG - 1)
            assert (LOW_STEP, -100.0) in zip(found.steps, found.values, strict=True)
            assert (HIGH_STEP, 100.0) in zip(found.steps, found.values, strict=True)
        assert any(map(math.isnan, series(run_id, "loss").values))
        # zoom in: a range of at most max_points points is exact
        zoom = series(run_id, "loss", min_step=1000, max_step=2999)
        assert zoom.steps == tuple(range(1000, 3000)) and zoom.total == 2000
        assert zoom.values == tuple(_long_value(s) for s in range(1000, 3000))
        assert not zoom.downsampled
        wider = series(run_id, "loss", max_points=400, min_step=10_001, max_step=20_000)
        assert wider.total == 10_000
        _check_shape(wider, 400, 10_001, 20_000)
        assert (LOW_STEP, -100.0) in zip(wider.steps, wider.values, strict=True)
        tail = series(run_id, "loss", min_step=LONG - 10)
        assert tail.steps == tuple(range(LONG - 10, LONG)) and not tail.downsampled


def test_unknown_runs_and_keys(store: Store, run_id: str) -> None:
    store.log_batch(run_id, metrics=[("loss", 1.0, 0, 1)])
    for series in _both(store):
        with pytest.raises(NotFound, match="Run 'nope' not found"):
            series("nope", "loss")
        assert series(run_id, "accuracy") == MetricSeries((), (), 0, False)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_points": 3}, "max_points must be between 4 and 100000, got 3"),
    ({"max_points": 100_001}, "max_points must be between 4 and 100000, got 100001"),
    ({"min_step": 5, "max_step": 4}, r"min_step \(5\) is after max_step \(4\)"),
])
def test_series_arguments_are_checked(store: Store, run_id: str, kwargs: dict[str, int],
                                      message: str) -> None:
    for series in _both(store):
        with pytest.raises(InvalidInput, match=message):
            series(run_id, "loss", **kwargs)


def test_run_keys_are_the_distinct_keys_of_the_experiments_runs(store: Store) -> None:
    fraud = store.create_experiment("fraud").experiment_id
    churn = store.create_experiment("churn").experiment_id
    empty = store.create_experiment("empty").experiment_id
    a = store.create_run(fraud, "a", 1, tags={"team": "risk"}).run_id
    b = store.create_run(fraud, "b", 2, tags={"team": "risk", "Zone": "eu"}).run_id
    c = store.create_run(churn, "c", 3).run_id
    store.log_batch(a, metrics=[("auc", 0.9, 0, 1), ("loss", 0.1, 0, 1)],
                    params={"depth": "6", "lr": "0.1"})
    store.log_batch(b, metrics=[("auc", math.nan, 0, 1), ("val loss", 0.2, 0, 1)],
                    params={"depth": "8"})
    store.log_batch(c, metrics=[("rmse", 3.0, 0, 1)], params={"alpha": "1"},
                    tags={"team": "growth"})
    assert store.list_run_keys([fraud]) == RunKeys(
        ("auc", "loss", "val loss"), ("depth", "lr"), ("Zone", "team"))
    assert store.list_run_keys([churn]) == RunKeys(("rmse",), ("alpha",), ("team",))
    assert store.list_run_keys([fraud, churn]) == RunKeys(
        ("auc", "loss", "rmse", "val loss"), ("alpha", "depth", "lr"), ("Zone", "team"))
    assert store.list_run_keys([empty]) == store.list_run_keys([]) == RunKeys((), (), ())
    assert store.list_run_keys(["999"]) == RunKeys((), (), ())
    assert Store.list_run_keys(store, [fraud, churn]) == store.list_run_keys([fraud, churn])
