"""One pooled HTTP connection to a team server: retries, errors, the token.

Every call of :class:`~forgeline.store.http.HttpStore` goes through one
:class:`Transport`, which holds one ``httpx.Client`` (keep-alive connections, shared by
threads; a forked child opens its own) and:

- sends ``Authorization: Bearer <token>`` when a token is set (``FORGELINE_TOKEN``);
- retries what may succeed a moment later, with exponential backoff and a bounded total
  time: a connection that fails or drops, and the answers 502, 503 and 504 (a restarting
  server, a proxy, a store that is briefly unavailable). The last failure ends in a
  StoreError naming the URL and what to do;
- turns a 4xx or 500 answer back into the Forgeline error the server raised (same class,
  same message, same hint), so a caller sees what it would see with a local store.

A retried write can reach the store twice when the first attempt was applied but its
answer lost; the store's writes are idempotent where it matters (params, tags, datasets,
artifacts, monitoring records keyed by id) and a repeated metric point is harmless.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson

from forgeline import errors
from forgeline.errors import ForgelineError, StoreError
from forgeline.store.http.wire import API_PREFIX
from forgeline.version import __version__

__all__ = ["HttpOptions", "Transport", "error_from_body"]

T = TypeVar("T")

_RETRY_STATUS = frozenset({502, 503, 504})
_ERRORS: dict[str, type[ForgelineError]] = {
    cls.code: cls for cls in (getattr(errors, name) for name in errors.__all__)
    if isinstance(cls, type) and issubclass(cls, ForgelineError)}
_ERRORS[ForgelineError.code] = ForgelineError


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How a client talks to a team server.

    Attributes:
        timeout_s: the longest wait for a connection or for the next bytes of an answer.
        retries: how many times a failed attempt is tried again.
        backoff_s: the wait before the first retry; it doubles at each retry.
        max_total_s: no retry starts after this long since the first attempt.
    """

    timeout_s: float = 60.0
    retries: int = 4
    backoff_s: float = 0.25
    max_total_s: float = 30.0


class _Retryable(Exception):
    """An attempt that may succeed if tried again; ``error`` is what to raise otherwise."""

    def __init__(self, error: ForgelineError) -> None:
        super().__init__(str(error))
        self.error = error


def error_from_body(status: int, body: bytes, what: str) -> ForgelineError:
    """The Forgeline error an error answer carries (``{"error": {code, message, hint}}``);
    a StoreError describing the answer when it is not one of ours (a proxy's page)."""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        found = orjson.loads(body)["error"]
        cls = _ERRORS.get(found["code"])
        if cls is not None and isinstance(found["message"], str):
            return cls(found["message"], hint=found.get("hint"))
    text = body[:200].decode("utf-8", "replace").strip()
    return StoreError(f"{what} answered HTTP {status}" + (f": {text}" if text else "."),
                      hint="Check that the URL points at a `forgeline server` (it answers "
                           f"under {API_PREFIX}/).")


class Transport:
    """HTTP calls to the team server at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, token: str | None = None,
                 options: HttpOptions | None = None) -> None:
        self.url = url.rstrip("/")
        self.api = self.url + API_PREFIX
        self.token = token
        self.options = options or HttpOptions()
        self._client: httpx.Client | None = None
        self._orphans: list[httpx.Client] = []
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        """The pooled client of this process (created on first use, again after a fork)."""
        client = self._client
        if client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    if self._client is not None:  # a fork's copy: its sockets are the
                        self._orphans.append(self._client)  # parent's; never close them
                    headers = {"User-Agent": f"forgeline/{__version__}"}
                    if self.token:
                        headers["Authorization"] = f"Bearer {self.token}"
                    self._client = httpx.Client(
                        base_url=self.api, headers=headers,
                        timeout=httpx.Timeout(self.options.timeout_s),
                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
                    self._pid = os.getpid()
                client = self._client
        return client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None

    # -- calls --------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """One JSON call: ``body`` (JSON-able) sent, the decoded answer returned."""
        content = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if content is not None else None

        def attempt() -> Any:
            response = self.client.request(method, path, content=content, params=params,
                                           headers=headers)
            self.check(response, method, path)
            return orjson.loads(response.content) if response.content else None

        return self.retrying(attempt, method, path)

    def check(self, response: httpx.Response, method: str, path: str) -> None:
        """Raise the error an answer carries (retryable for 502, 503 and 504)."""
        if response.status_code < 400:
            return
        response.read()
        error = error_from_body(response.status_code, response.content,
                                f"The server at {self.url} ({method} {path})")
        if response.status_code in _RETRY_STATUS:
            raise _Retryable(error)
        raise error

    def retrying(self, attempt: Callable[[], T], method: str, path: str) -> T:
        """Run ``attempt``, again after a connection failure or a 502/503/504, with
        exponential backoff, within the retry budget; then raise a StoreError (or the
        error the server answered last)."""
        options = self.options
        start = time.monotonic()
        wait = options.backoff_s
        tries = 0
        while True:
            tries += 1
            failure: httpx.TransportError | None = None
            try:
                return attempt()
            except httpx.TransportError as e:
                failure, answered = e, None
            except _Retryable as e:
                answered = e.error
            elapsed = time.monotonic() - start
            if tries > options.retries or elapsed + wait > options.max_total_s:
                if answered is not None:
                    raise answered
                assert failure is not None
                raise self._unreachable(failure, method, path, tries, elapsed) from None
            time.sleep(wait)
            wait *= 2

    def _unreachable(self, error: httpx.TransportError, method: str, path: str, tries: int,
                     elapsed: float) -> StoreError:
        reason = str(error) or type(error).__name__
        return StoreError(
            f"Cannot reach the Forgeline server at {self.url} ({method} {path}: {reason}; "
            f"{tries} tries in {elapsed:.1f}s).",
            hint="Check that `forgeline server` is running there and reachable from this "
                 "machine, or point FORGELINE_STORE_URI (or --store) at another store.")

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed answer (errors raised as by :meth:`call`; the caller retries)."""
        with self.client.stream(method, path, **kwargs) as response:
            self.check(response, method, path)
            yield response
