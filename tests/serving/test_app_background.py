"""Background jobs attached to the app: built with it, started with its lifespan, stopped
at shutdown once requests are answered and before the prediction log is flushed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from forgeline.errors import InvalidInput
from forgeline.serving.app import BackgroundJob, ServingState, create_app
from forgeline.serving.config import ServeConfig
from tests.serving.conftest import LiveServer, MemoryLog, TrainedStore


class _Recorder(MemoryLog):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def flush(self) -> None:
        self.events.append("flush")
        super().flush()


class _Job(BackgroundJob):
    def __init__(self, state: ServingState, events: list[str]) -> None:
        self.state, self.events = state, events

    def start(self) -> None:
        self.events.append(f"start {self.state.deployment.primary.label}")

    def stop(self) -> None:
        log = self.state.prediction_log
        assert isinstance(log, MemoryLog)
        self.events.append(f"stop after {len(log.records)} answered")


def test_jobs_start_with_the_app_and_stop_before_the_log_is_flushed(
        trained: TrainedStore) -> None:
    events: list[str] = []
    config = ServeConfig("fraud@champion", store_uri=trained.uri, cache_dir=str(trained.cache),
                         runtime="native")
    app = create_app(config, prediction_log=_Recorder(events),
                     background=[lambda state: _Job(state, events)] * 2)
    assert events == [] and len(app.state.forgeline.jobs) == 2  # built now, not started
    with LiveServer(app) as server:
        assert events == ["start fraud/1"] * 2
        answer = httpx.post(f"{server.url}/predict", json={"records": trained.rows[:1]})
        assert answer.status_code == 200
    assert events == ["start fraud/1"] * 2 + ["stop after 1 answered"] * 2 + ["flush"]


def test_a_job_that_cannot_be_built_fails_the_app(trained: TrainedStore) -> None:
    def refuse(state: ServingState) -> Any:
        raise InvalidInput(f"No job for {state.deployment.primary.label}.")

    config = ServeConfig("fraud@champion", store_uri=trained.uri, cache_dir=str(trained.cache),
                         runtime="native", log_predictions=False)
    with pytest.raises(InvalidInput, match=r"^No job for fraud/1\.$"):
        create_app(config, background=[refuse])
