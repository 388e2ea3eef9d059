"""The HTTP store retries what may pass a moment later, then fails with a clear StoreError."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from forgeline.errors import StoreError
from forgeline.store import get_store
from forgeline.store.http.store import HttpStore
from forgeline.store.http.transport import HttpOptions

FAST = HttpOptions(timeout_s=5, retries=3, backoff_s=0.05, max_total_s=10)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def flaky_server(failures: int, status: int = 503) -> Iterator[tuple[str, list[float]]]:
    """A real HTTP server that answers ``status`` ``failures`` times, then an empty
    experiment list; yields its URL and the times the requests came."""
    seen: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(time.monotonic())
            ok = len(seen) > failures
            body = b'{"experiments": []}' if ok else b"<html>busy</html>"
            self.send_response(200 if ok else status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_down_ends_in_a_store_error_after_backing_off() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    store = HttpStore(url, options=FAST)
    start = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.list_experiments()
    elapsed = time.monotonic() - start
    assert 0.05 + 0.1 + 0.2 <= elapsed < 5  # three waits, doubling
    message = str(info.value)
    assert message.startswith(f"Cannot reach the Forgeline server at {url} (GET /experiments")
    assert "4 tries in" in message
    assert "Check that `forgeline server` is running there" in message


def test_the_total_time_is_bounded() -> None:
    options = HttpOptions(timeout_s=5, retries=50, backoff_s=0.1, max_total_s=0.5)
    start = time.monotonic()
    with pytest.raises(StoreError, match="Cannot reach"):
        HttpStore(f"http://127.0.0.1:{_closed_port()}", options=options).list_experiments()
    assert time.monotonic() - start < 1.5


def test_get_store_opens_a_team_server_by_its_url() -> None:
    store = get_store("http://127.0.0.1:1/")
    assert isinstance(store, HttpStore) and store.uri == "http://127.0.0.1:1"
    assert get_store("http://127.0.0.1:1/") is store


def test_a_busy_server_is_retried_until_it_answers() -> None:
    with flaky_server(failures=2) as (url, seen):
        assert HttpStore(url, options=FAST).list_experiments() == []
    assert len(seen) == 3
    assert seen[2] - seen[1] >= seen[1] - seen[0] >= 0.04  # backing off


def test_a_server_that_stays_busy_gives_its_answer() -> None:
    with flaky_server(failures=100, status=502) as (url, seen), \
            pytest.raises(StoreError, match=r"answered HTTP 502: <html>busy</html>"):
        HttpStore(url, options=FAST).list_experiments()
    assert len(seen) == 4


def test_a_client_error_is_not_retried() -> None:
    with flaky_server(failures=100, status=400) as (url, seen), \
            pytest.raises(StoreError, match="answered HTTP 400"):
        HttpStore(url, options=FAST).list_experiments()
    assert len(seen) == 1


def test_not_a_forgeline_server() -> None:
    with flaky_server(failures=100, status=404) as (url, _), pytest.raises(
            StoreError, match="Check that the URL points at a `forgeline server`"):
        HttpStore(url, options=FAST).get_experiment("1")
