"""Shared fixtures: an isolated home per test, a real PostgreSQL server per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.store import close_stores
from tests.pgserver import PostgresServer
from tests.webhook import Webhook, webhook_server


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


@pytest.fixture(params=["sqlite", "postgres"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'forgeline.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A webhook receiver on loopback (``.url``; what it got in ``.received``)."""
    with webhook_server() as hook:
        yield hook
