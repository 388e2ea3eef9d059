"""A real store with two trained versions of ``fraud``, and real servers on loopback.

Training is the slow part, so the store is built once per session; a test that changes
it (``--watch`` moves an alias) works on its own copy.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn
from click.testing import Result
from typer.testing import CliRunner

from forgeline.cli import app
from forgeline.serving.app import create_app
from forgeline.serving.config import ServeConfig

FEATURES = ["amount", "items", "country"]


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n)
    country = rng.choice(["FR", "DE", "US"], n)
    score = amount / 100 + (country == "US") + rng.normal(0, 0.5, n)
    return pd.DataFrame({"amount": amount, "items": rng.integers(1, 10, n), "country": country,
                         "y": (score > np.median(score)).astype(int)})


@dataclass(frozen=True)
class TrainedStore:
    """A folder with ``forgeline.db`` and ``artifacts/``: fraud/1 @champion, fraud/2 @challenger."""

    root: Path
    cache: Path
    rows: list[dict[str, Any]]  # a few feature records to score

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'forgeline.db'}"

    def copy(self, dst: Path) -> TrainedStore:
        shutil.copytree(self.root, dst)
        return TrainedStore(dst, self.cache, self.rows)


def train_store(base: Path) -> TrainedStore:
    """Train ``fraud`` twice into a new store under ``base`` (see :class:`TrainedStore`)."""
    from forgeline.store import close_stores
    from forgeline.tracking.client import Client
    from forgeline.workflows.train import train

    root = base / "store"
    root.mkdir()
    client = Client(f"sqlite:///{root / 'forgeline.db'}")
    for seed, alias in ((0, "champion"), (1, "challenger")):
        data = base / f"data{seed}.csv"
        make_frame(300, seed).to_csv(data, index=False)
        train({"name": "fraud", "data": {"path": str(data), "target": "y"}, "seed": seed,
               "models": ["logistic_regression"], "tuning": {"trials": 1, "cv_folds": 2},
               "register": {"alias": alias}}, client=client)
    close_stores()
    rows = make_frame(8, 7)[FEATURES].to_dict("records")
    return TrainedStore(root, base / "cache", rows)


@pytest.fixture(scope="session")
def trained(serving_store: TrainedStore) -> TrainedStore:
    """The session's trained store (tests/conftest.py: ``serving_store``)."""
    return serving_store


class LiveServer:
    """A uvicorn server (uvloop + httptools) for ``app`` on a free loopback port, in a thread.

    uvicorn installs signal handlers only in the main thread, so none are installed here.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="uvloop", http="httptools",
                                lifespan="on", log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)

    @property
    def state(self) -> Any:
        return self.app.state.forgeline


class MemoryLog:
    """Keeps what the server hands a prediction log (``serving.predlog.PredictionLog``'s
    interface), so a test can read it back without Parquet files."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.dropped = 0
        self.flushed = False

    def append(self, request_id: Any, frame: pd.DataFrame, prediction: Any, *,
               version: int | None, runtime: str, shadow: Any = False,
               rows: Any = None, ts: float | None = None, classes: Any = None) -> bool:
        """One record per request, split out of the model call the server hands over."""
        ids = [request_id] if rows is None else list(request_id)
        counts = [len(frame)] if rows is None else list(rows)
        flags = [shadow] * len(ids) if isinstance(shadow, bool) else list(shadow)
        assert sum(counts) == len(frame)
        start = 0
        for rid, n, flag in zip(ids, counts, flags, strict=True):
            part = slice(start, start + n)
            start += n
            self.records.append({
                "request_id": rid, "inputs": frame.iloc[part], "version": version,
                "runtime": runtime, "shadow": bool(flag), "classes": classes,
                "predictions": prediction.labels[part],
                "probabilities": None if prediction.proba is None else prediction.proba[part]})
        return True

    def flush(self) -> None:
        self.flushed = True


@contextmanager
def live_servers(trained: TrainedStore, app_factory: Callable[..., Any] = create_app,
                 ) -> Iterator[Callable[..., LiveServer]]:
    """``start(model="fraud@champion", store=trained, log=None, **settings)`` starts a live
    server for the app ``app_factory(config, prediction_log=log)``; all are stopped at the
    end.

    The runtime is "native" unless asked otherwise: its answers are the predictor's exactly,
    and it starts without an ONNX conversion. ``settings`` are ServeConfig's
    (``listener=Listener(token="x")``, ``batching=Batching(max_wait_ms=0)``...).
    """
    started: list[LiveServer] = []

    def start(model: str = "fraud@champion", *, store: TrainedStore | None = None,
              log: MemoryLog | None = None, **settings: Any) -> LiveServer:
        store = store or trained
        settings.setdefault("runtime", "native")
        config = ServeConfig(model=model, store_uri=store.uri, cache_dir=str(store.cache),
                             **settings)
        server = LiveServer(app_factory(config, prediction_log=log)).__enter__()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.__exit__(None, None, None)


@pytest.fixture
def serve(trained: TrainedStore) -> Iterator[Callable[..., LiveServer]]:
    """A live server of :func:`forgeline.serving.app.create_app` (see :func:`live_servers`)."""
    with live_servers(trained) as start:
        yield start


def metric(text: str, sample_name: str, /, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(sample_name):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, rest = head.partition("{")
        if sample != sample_name:
            continue
        found = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if part)
        if all(found.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(value)
    return 0.0


def invoke(tmp_path: Path, *args: str) -> Result:
    """The ``forgeline`` command in process, its home under ``tmp_path``."""
    env = {"FORGELINE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    return CliRunner().invoke(app, list(args), env=env)


def one_error_line(result: Result, code: int, fragment: str) -> None:
    """The command failed with ``code`` and exactly one ``error:`` line holding ``fragment``."""
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert "Traceback" not in result.output
