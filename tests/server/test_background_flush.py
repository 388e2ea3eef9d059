"""A live run sends metric batches to a team server from a background thread: the logging
loop goes on while a batch is on its way, at most one batch is in flight, and a batch the
server refused is kept, in order, and its error raised by the next call."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

import forgeline as fl
from forgeline.entities import RunStatus
from forgeline.errors import StoreError
from forgeline.store.sql import SqlStore
from tests.teamserver import LiveServer


def test_batches_go_in_the_background_and_none_is_lost(
        live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGELINE_METRIC_FLUSH_SIZE", "100")
    monkeypatch.setenv("FORGELINE_METRIC_FLUSH_INTERVAL_S", "3600")
    backing = SqlStore(f"sqlite:///{tmp_path / 'team.db'}")
    held, refusing, batches = threading.Event(), threading.Event(), []
    held.set()
    store_batch = backing.log_batch

    def log_batch(run_id: str, metrics: Any = (), params: Any = None, tags: Any = None) -> None:
        if metrics:
            assert held.wait(10)
            if refusing.is_set():
                raise StoreError("the disk is full")
            batches.append(len(metrics))
        store_batch(run_id, metrics, params, tags)

    monkeypatch.setattr(backing, "log_batch", log_batch)
    client = fl.Client(live_server.use(backing, tmp_path / "artifacts"))
    reader = fl.Client(backing)
    run = client.start_run("background")
    try:
        held.clear()  # the server holds every batch until told
        start = time.monotonic()
        run.log_metric("loss", 0.0, step=0)  # the first point is sent at once ...
        for step in range(1, 100):  # ... and the loop goes on while it is held
            run.log_metric("loss", 1 / step, step=step)
        assert time.monotonic() - start < 5
        assert reader.get_metric_history(run.run_id, "loss") == [] and batches == []
        waiter = threading.Thread(target=run.log_metric, args=("loss", 0.01, 100))
        waiter.start()  # the next full batch waits for the one in flight
        waiter.join(0.5)
        assert waiter.is_alive()
        held.set()
        waiter.join(10)
        run.flush()
        assert batches == [1, 100] and len(reader.get_metric_history(run.run_id, "loss")) == 101

        refusing.set()
        for step in range(101, 201):  # a full batch, refused in the background
            run.log_metric("loss", 1 / step, step=step)
        run.log_metric("loss", 0.5, step=201)
        with pytest.raises(StoreError, match="the disk is full"):
            run.flush()
        refusing.clear()
        run.log_metric("loss", 0.25, step=202)
        run.end()
    finally:
        held.set()
    stored = reader.get_metric_history(run.run_id, "loss")
    assert [m.step for m in stored] == list(range(203))  # every point, in the order logged
    assert [m.timestamp for m in stored] == sorted(m.timestamp for m in stored)
    assert reader.get_run(run.run_id).status is RunStatus.FINISHED
