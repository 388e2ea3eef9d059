"""Micro-batching (on its own and under a real server) and what ``/metrics`` shows."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd

from forgeline.packaging import load_model
from forgeline.serving.batching import MicroBatcher
from forgeline.serving.config import Batching
from forgeline.serving.runtime import Prediction
from forgeline.tracking.client import Client
from tests.serving.conftest import MemoryLog, TrainedStore, metric


class _Doubler:
    """A stand-in model: doubles ``x``; records each call's size; refuses x == -1."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.calls: list[int] = []
        self.threads: list[str] = []
        self.seconds = seconds
        self.active = self.most_active = 0

    def __call__(self, frame: pd.DataFrame) -> Prediction:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        self.threads.append(threading.current_thread().name)
        self.calls.append(len(frame))
        time.sleep(self.seconds)
        self.active -= 1
        if (frame["x"] == -1).any():
            raise ValueError("x = -1")
        return Prediction(frame["x"].to_numpy() * 2, None)


def _run(model: _Doubler, sizes: list[int], bad: int | None = None, **settings: Any
         ) -> list[Any]:
    """Submit one frame per size at once (frame ``bad`` holds x = -1); the results."""
    async def main() -> list[Any]:
        batcher = MicroBatcher(model, name="t", **settings)
        batcher.start()
        frames = [pd.DataFrame({"x": np.full(n, -1.0) if i == bad else np.arange(n) + 10.0 * i})
                  for i, n in enumerate(sizes)]
        results = await asyncio.gather(*(batcher.predict(f) for f in frames),
                                       return_exceptions=True)
        await batcher.close()
        return [r if isinstance(r, Exception) else (r.labels, f["x"].to_numpy() * 2)
                for r, f in zip(results, frames, strict=True)]

    return asyncio.run(main())


def test_the_batcher_groups_slices_and_isolates() -> None:
    model = _Doubler()
    results = _run(model, [1, 2, 1, 3, 1, 20, 1], bad=3, max_batch_size=8, max_wait_s=0.05,
                   inline_s=0.5)  # far above a call of this model, even on a busy machine
    assert isinstance(results[3], ValueError)  # the bad request fails alone...
    for i, result in enumerate(results):
        if i != 3:  # ...and every other one gets its own rows back, in order
            assert np.array_equal(*result)
    assert 20 in model.calls  # bigger than max_batch_size: scored alone
    assert model.calls[0] == 8  # 1+2+1+3+1 waited for each other, then 3 failed them...
    assert sorted(model.calls[1:6]) == [1, 1, 1, 2, 3]  # ...so they were retried one by one
    assert model.most_active == 1  # one call at a time
    # a model this fast is called on the event loop once a call has timed it: the failed
    # batch and its retries ran on the worker thread, the 20-row and last calls inline
    assert {t[:11] for t in model.threads[:6]} == {"forgeline-t"}
    assert set(model.threads[6:]) == {threading.main_thread().name}


def test_a_slow_model_stays_on_the_worker_thread() -> None:
    model = _Doubler(seconds=0.003)
    results = _run(model, [1] * 6, max_batch_size=2, max_wait_s=0.0, inline_s=0.001)
    assert all(np.array_equal(*r) for r in results)
    assert model.most_active == 1 and {t[:11] for t in model.threads} == {"forgeline-t"}


def test_no_wait_still_scores_everything() -> None:
    model = _Doubler()
    results = _run(model, [1] * 10, max_batch_size=4, max_wait_s=0.0)
    assert all(np.array_equal(*r) for r in results)
    assert sum(model.calls) == 10 and max(model.calls) <= 4


def test_concurrent_requests_share_model_calls(serve: Any, trained: TrainedStore) -> None:
    log = MemoryLog()
    # generous: the client shares our CPU
    server = serve(batching=Batching(max_wait_ms=100), log=log)
    rows = trained.rows
    expected = load_model("fraud@champion", Client(trained.uri), trained.cache
                          ).predict_proba(rows).to_numpy()

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=server.url, limits=limits) as http:
            return await asyncio.gather(*(
                http.post("/predict", json={"records": [rows[i % len(rows)]]})
                for i in range(32)))

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 32
    for i, answer in enumerate(answers):  # each request got its own row's answer
        assert np.allclose(answer.json()["probabilities"][0], expected[i % len(rows)],
                           rtol=1e-12, atol=0)
    text = httpx.get(f"{server.url}/metrics").text
    calls = metric(text, "forgeline_batch_size_rows_count", name="fraud", version="1")
    assert metric(text, "forgeline_batch_size_rows_sum", name="fraud", version="1") == 32
    assert calls < 32, f"no batching: {calls} model calls for 32 requests"
    assert metric(text, "forgeline_batch_size_rows_bucket", name="fraud", version="1",
                  le="1.0") < calls  # at least one call had more than one row
    assert len(log.records) == 32 and {r["shadow"] for r in log.records} == {False}


def test_metrics(serve: Any) -> None:
    log = MemoryLog()
    server = serve(log=log)
    with httpx.Client(base_url=server.url) as http:
        for amount in (10.0, 400.0, 5000.0):
            assert http.post("/predict", json={"records": [
                {"amount": amount, "items": 2, "country": "US"}]}).status_code == 200
        assert http.post("/predict", content=b"nope").status_code == 400
        assert http.get("/nowhere").status_code == 404
        log.dropped = 5  # the log fell behind: the next request carries the count over
        assert http.post("/predict", json={"records": [
            {"amount": 1.0, "items": 2, "country": "FR"}]}).status_code == 200
        answer = http.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert metric(text, "forgeline_requests_total", route="/predict", method="POST",
                  status="200") == 4
    assert metric(text, "forgeline_requests_total", route="/predict", status="400") == 1
    assert metric(text, "forgeline_requests_total", route="<unmatched>", status="404") == 1
    assert metric(text, "forgeline_request_duration_seconds_count", route="/predict",
                  status="200") == 4
    assert metric(text, "forgeline_request_duration_seconds_bucket", route="/predict",
                  status="200", le="+Inf") == 4
    assert metric(text, "forgeline_model_info", name="fraud", version="1",
                  runtime="native") == 1
    by_class = [metric(text, "forgeline_predictions_total", name="fraud", version="1",
                       **{"class": c}) for c in ("0", "1")]
    assert sum(by_class) == 4 and all(by_class)
    assert metric(text, "forgeline_model_requests_total", version="1", role="primary") == 4
    assert metric(text, "forgeline_input_out_of_range_total", column="amount") == 2
    assert metric(text, "forgeline_prediction_log_dropped_total") == 5
    assert metric(text, "forgeline_batch_size_rows_count", version="1") == 4


def test_the_log_gets_every_prediction(serve: Any) -> None:
    log = MemoryLog()
    server = serve(log=log, batching=Batching(max_wait_ms=0))
    with httpx.Client(base_url=server.url) as http:
        http.post("/predict", json={"records": [{"amount": 1.0, "items": 2, "country": "FR"},
                                                {"amount": 2.0, "items": 1, "country": "DE"}]},
                  headers={"X-Request-ID": "r-1"})
    server.__exit__(None, None, None)  # shutdown flushes the log
    assert log.flushed
    (record,) = log.records
    assert record["request_id"] == "r-1" and record["version"] == 1 and not record["shadow"]
    assert list(record["inputs"].columns) == ["amount", "items", "country"]
    assert record["probabilities"].shape == (2, 2) and len(record["predictions"]) == 2


def test_batch_statistics_that_fall_behind_are_skipped_and_counted(
        trained: TrainedStore, monkeypatch: Any) -> None:
    """The statistics queue is bounded: a stuck statistics thread costs counted
    statistics, never unbounded memory."""
    from forgeline.serving import metrics as metrics_module

    monkeypatch.setattr(metrics_module, "_MAX_PENDING", 2)
    model = load_model("fraud@champion", Client(trained.uri), trained.cache)
    frame = model.signature.validate(pd.DataFrame({"amount": [1.0, 2.0], "items": [1, 2],
                                                   "country": ["FR", "DE"]}))
    prediction = Prediction(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    metrics = metrics_module.ServingMetrics()
    try:
        with metrics._drain_lock:  # the statistics thread cannot record anything
            for _ in range(3):
                metrics.submit_batch("fraud", 1, model.signature, frame, prediction)
        asyncio.run(metrics.settle())
        text = metrics.exposition().decode()
    finally:
        metrics.close()
    assert metric(text, "forgeline_batch_stats_skipped_total") == 1
    assert metric(text, "forgeline_batch_size_rows_count", name="fraud", version="1") == 2
    assert metric(text, "forgeline_predictions_total", name="fraud", version="1",
                  **{"class": "1"}) == 2
