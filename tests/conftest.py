"""Shared fixtures: an isolated home per test, a real PostgreSQL server, a real Ray
cluster and a fake OpenAI-compatible LLM endpoint per session."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.store import close_stores, get_store
from tests.labeling.fakellm import FakeLLMServer
from tests.pgserver import PostgresServer
from tests.raycluster import RayCluster
from tests.serving.conftest import TrainedStore, train_store
from tests.teamserver import LiveServer
from tests.webhook import Webhook, webhook_server

pytest_plugins = ["tests.s3server", "tests.demorun"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own folder with its own store and no FORGELINE_* leaking in."""
    for name in list(os.environ):
        if name.startswith("FORGELINE_") and name != "FORGELINE_TEST_POSTGRES_URI":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield
    close_stores()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except Exception as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL server for the tests: {e}")
    # Migrate the template once: every test database cloned from it starts at head.
    from forgeline.store.sql import SqlStore

    SqlStore(server.uri(server.template)).close()
    yield server
    server.stop()


# Ray reads its token settings when it is imported (at collection, by the Ray tests): the
# session's cluster token is set for this process before any of them.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A Ray head and one worker node (one CPU each) started with ``ray start``, sharing
    this process's token: ``ray.init(address=...)`` here and any ``forgeline`` command
    started with ``cluster.env`` join it."""
    pytest.importorskip("ray")
    cluster = RayCluster(workers=1, cpus=1)
    yield cluster
    import ray

    ray.shutdown()
    cluster.stop()


def _sql_uri(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'forgeline.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each SQL backend (for tests of the SQL backend itself)."""
    return _sql_uri(request, tmp_path, request.param)


@pytest.fixture(params=["sqlite", "postgres", "http-sqlite", "http-postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each backend: SQLite, PostgreSQL, and a team server
    (``http://``) in front of each."""
    kind: str = request.param
    uri = _sql_uri(request, tmp_path, kind.removeprefix("http-"))
    if not kind.startswith("http-"):
        return uri
    server: LiveServer = request.getfixturevalue("live_server")
    return server.use(get_store(uri), tmp_path / "server-artifacts")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One team server on loopback for the session; each test gives it its own store."""
    from forgeline.store.sql import SqlStore

    root = tmp_path_factory.mktemp("team-server")
    server = LiveServer(SqlStore(f"sqlite:///{root / 'idle.db'}"), root / "artifacts")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def serving_store(tmp_path_factory: pytest.TempPathFactory) -> TrainedStore:
    """``fraud`` trained twice into a store, once per session (see
    tests/serving/conftest.py: ``train_store``); tests that change it work on a copy."""
    return train_store(tmp_path_factory.mktemp("serving"))


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on loopback (``.url``; what it got in ``.received``)."""
    with webhook_server() as hook:
        yield hook


@pytest.fixture(scope="session")
def _fake_llm_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake_llm(_fake_llm_server: FakeLLMServer) -> FakeLLMServer:
    """The fake LLM endpoint on loopback (tests/labeling/fakellm.py), reset for this test."""
    _fake_llm_server.reset()
    return _fake_llm_server
