"""A team server per test: the session's live server pointed at a fresh SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from forgeline.entities import Role
from forgeline.store import Store, get_store
from forgeline.store.http.store import HttpStore
from forgeline.store.http.wire import API_PREFIX
from forgeline.store.tokens import issue_token
from tests.teamserver import LiveServer


@dataclass
class Team:
    """A server (``url``) over a SQLite store (``db``; ``store`` opens it directly)."""

    url: str
    db: Path
    store: Store
    artifacts: Path

    def secret(self, role: Role, name: str | None = None) -> str:
        """A new token's secret, made on the server's store as the CLI does."""
        return issue_token(self.store, name or role.value, role)[1]

    def http(self, secret: str | None = None) -> httpx.Client:
        """A raw HTTP client of the REST API (base URL: the API prefix)."""
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=30)

    def remote(self, secret: str | None = None) -> HttpStore:
        """A Forgeline client store of this server with ``secret`` (none: no token)."""
        return HttpStore(self.url, token=secret or "")


def _team(server: LiveServer, tmp_path: Path, auth: bool) -> Team:
    db = tmp_path / "server" / "forgeline.db"
    store = get_store(f"sqlite:///{db}")
    url = server.use(store, tmp_path / "server" / "artifacts", auth=auth)
    return Team(url, db, store, tmp_path / "server" / "artifacts")


@pytest.fixture
def team(live_server: LiveServer, tmp_path: Path) -> Team:
    """A team server without access control."""
    return _team(live_server, tmp_path, auth=False)


@pytest.fixture
def secured(live_server: LiveServer, tmp_path: Path) -> Iterator[Team]:
    """A team server that requires tokens."""
    yield _team(live_server, tmp_path, auth=True)
