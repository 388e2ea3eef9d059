"""Champion and challenger: canary split, shadow scoring, and swapping on ``--watch``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from forgeline.packaging import load_model
from forgeline.serving.config import Batching
from forgeline.serving.models import canary_share
from forgeline.tracking.client import Client
from tests.serving.conftest import MemoryLog, TrainedStore, metric

ROW = {"amount": 120.0, "items": 3, "country": "FR"}


async def _post_many(url: str, ids: list[str], width: int = 20) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=url) as http:
        for start in range(0, len(ids), width):
            answers += await asyncio.gather(*(
                http.post("/predict", json={"records": [ROW]}, headers={"X-Request-ID": rid})
                for rid in ids[start:start + width]))
    return answers


def test_canary_split_is_deterministic_by_request_id(serve: Any) -> None:
    server = serve(canary="fraud@challenger", canary_percent=10,
                   batching=Batching(max_wait_ms=10))
    ids = [f"req-{i}" for i in range(120)]
    answers = asyncio.run(_post_many(server.url, ids))
    assert all(a.status_code == 200 for a in answers)
    to_canary = {a.json()["request_id"] for a in answers if a.json()["version"] == 2}
    assert to_canary == {rid for rid in ids if canary_share(rid) < 10}
    assert 5 <= len(to_canary) <= 20  # about 10% of 120 (all 100k ids: below)
    assert 9_500 <= sum(canary_share(f"id-{i}") < 10 for i in range(100_000)) <= 10_500
    again = asyncio.run(_post_many(server.url, ids[:20]))  # retries go the same way
    assert [a.json()["version"] for a in again] == [a.json()["version"] for a in answers[:20]]
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(text, "forgeline_model_requests_total", version="2", role="canary") == \
        len(to_canary) + sum(a.json()["version"] == 2 for a in again)


def test_shadow_scores_in_the_background_and_changes_nothing(serve: Any,
                                                             trained: TrainedStore) -> None:
    log = MemoryLog()
    server = serve(shadow="fraud@challenger", log=log)
    rows = trained.rows
    client = Client(trained.uri)
    champion = load_model("fraud@champion", client, trained.cache).predict_proba(rows)
    challenger = load_model("fraud@challenger", client, trained.cache).predict_proba(rows)
    with httpx.Client(base_url=server.url) as http:
        for i in range(3):
            got = http.post("/predict", json={"records": rows}, headers={"X-Request-ID": f"s{i}"})
            assert got.json()["version"] == 1
            assert np.array_equal(np.array(got.json()["probabilities"]), champion.to_numpy())
        deadline = time.monotonic() + 10
        while True:  # the shadow answers after the response: wait for it
            text = http.get("/metrics").text
            done = metric(text, "forgeline_shadow_predictions_total", name="fraud", version="2")
            if done == 3 * len(rows) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    assert done == 3 * len(rows)
    assert metric(text, "forgeline_model_info", version="2", runtime="native") == 1
    shadow = [r for r in log.records if r["shadow"]]
    assert [r["request_id"] for r in shadow] == ["s0", "s1", "s2"]
    assert {(r["version"], r["runtime"]) for r in shadow} == {(2, "native")}
    assert np.array_equal(shadow[0]["probabilities"], challenger.to_numpy())
    assert [r["version"] for r in log.records if not r["shadow"]] == [1, 1, 1]


def test_watch_swaps_the_new_version_in_without_failing_a_request(
        serve: Any, trained: TrainedStore, tmp_path: Path) -> None:
    store = trained.copy(tmp_path / "store")
    server = serve(store=store, watch=True, watch_interval_s=0.1)
    versions: list[int] = []
    statuses: list[int] = []

    async def traffic(moved: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=server.url) as http:
            after = 0
            for _ in range(2000):  # bounded: ends 30 answers after the first from version 2
                batch = await asyncio.gather(*(http.post("/predict", json={"records": [ROW]})
                                               for _ in range(4)))
                statuses.extend(a.status_code for a in batch)
                versions.extend(a.json().get("version", -1) for a in batch)
                if 2 in versions:
                    moved.set()
                    after += len(batch)
                    if after >= 30:
                        return

    async def main() -> None:
        moved = asyncio.Event()
        task = asyncio.create_task(traffic(moved))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(Client(store.uri).set_alias, "fraud", "champion", 2)
        await asyncio.wait_for(task, timeout=20)

    asyncio.run(main())
    assert set(statuses) == {200}, statuses
    first_new = versions.index(2)
    assert set(versions[:first_new]) == {1} and first_new > 0
    assert versions[-20:] == [2] * 20  # once swapped, it stays swapped
    text = httpx.get(f"{server.url}/metrics").text
    assert metric(text, "forgeline_model_switches_total", ref="fraud@champion") == 1
    assert metric(text, "forgeline_model_info", version="2") == 1
    assert 'forgeline_model_info{name="fraud",runtime="native",version="1"}' not in text
    assert server.state.deployment.primary.label == "fraud/2"
    meta = httpx.get(f"{server.url}/v2/models/fraud").json()
    assert meta["versions"] == ["2"]
    assert httpx.get(f"{server.url}/openapi.json").json()["info"]["version"] == "2"


def test_the_prediction_log_gets_answers_and_shadow_rows(serve: Any, trained: TrainedStore,
                                                        tmp_path: Path) -> None:
    from forgeline.serving.predlog import PredictionLog
    from forgeline.store.predictions import read_predictions

    log = PredictionLog(tmp_path / "log", "fraud", flush_interval_s=60)
    server = serve(shadow="fraud@challenger", log=log)
    with httpx.Client(base_url=server.url) as http:
        for i in range(3):
            assert http.post("/predict", json={"records": trained.rows[:2]},
                             headers={"X-Request-ID": f"p{i}"}).status_code == 200
    server.__exit__(None, None, None)  # shutdown waits for the shadow, then flushes the log
    rows = read_predictions(tmp_path / "log", "fraud", include_shadow=True)
    assert len(rows) == 12 and log.dropped == 0
    answered = rows[~rows["shadow"]]
    assert sorted(set(answered["request_id"])) == ["p0", "p1", "p2"]
    assert set(answered["model_version"]) == {1}
    assert set(rows[rows["shadow"]]["model_version"]) == {2}
    log.close()
