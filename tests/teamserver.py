"""A real team server (``forgeline.server``) on a loopback port, in a background thread.

Starting uvicorn costs more than a test, so one server serves a whole session and each
test points it at its own fresh store and artifact folder (:meth:`LiveServer.use`): real
HTTP over real sockets, in front of a real SQLite file or PostgreSQL database.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from forgeline.server.app import create_app
from forgeline.store import LocalArtifactStore, Store


class LiveServer:
    """A uvicorn server running ``create_app`` in a daemon thread; ``url`` is its base URL."""

    def __init__(self, store: Store, artifacts: Path, *, auth: bool = False,
                 **options: int | None) -> None:
        self.app = create_app(store, LocalArtifactStore(artifacts), auth=auth, **options)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the team server did not start")
            time.sleep(0.005)

    def use(self, store: Store, artifacts: Path, *, auth: bool = False) -> str:
        """Serve ``store`` and ``artifacts`` from now on; returns the server's URL."""
        state = self.app.state
        state.store, state.artifacts, state.auth = store, LocalArtifactStore(artifacts), auth
        state.token_cache = None
        return self.url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@contextmanager
def team_server(store: Store, artifacts: Path, *, auth: bool = False,
                **options: int | None) -> Iterator[LiveServer]:
    """A server of its own for a test that needs other limits or options."""
    server = LiveServer(store, artifacts, auth=auth, **options)
    try:
        yield server
    finally:
        server.stop()
