"""HTTP plumbing: JSON responses, error bodies, body limits, auth, request ids, metrics.

Errors follow one rule: a :class:`~forgeline.errors.ForgelineError` answers the status
``errors.http_status`` gives it (plus 401 and 413, which only HTTP has); anything else is
a bug, logged with its traceback and answered 500 with a message, and the server goes on.
"""

from __future__ import annotations

import hmac
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forgeline.errors import ForgelineError, InvalidInput, http_status
from forgeline.util.json import parse_json

if TYPE_CHECKING:
    from forgeline.serving.metrics import ServingMetrics

__all__ = ["REQUEST_ID_HEADER", "BodyTooLarge", "Endpoint", "RawRequest", "RequestMiddleware",
           "Unauthorized", "check_auth", "error_response", "json_response", "new_request_id",
           "read_json", "request_id", "status_of"]

log = logging.getLogger("forgeline.serving")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # visible ASCII, as proxies send them
_UNMATCHED = "<unmatched>"


class BodyTooLarge(InvalidInput):
    """The request body is larger than the server's ``max_body_bytes`` (HTTP 413)."""

    status = 413


class Unauthorized(ForgelineError):
    """No valid bearer token (HTTP 401)."""

    code = "UNAUTHORIZED"
    status = 401


def status_of(error: ForgelineError) -> int:
    """The HTTP status for ``error``: its own for HTTP-only errors, else the shared table."""
    return int(getattr(error, "status", 0) or http_status(error))


def json_response(payload: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    """``payload`` as JSON via orjson (numpy arrays and scalars included; NaN -> null)."""
    body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def error_response(error: BaseException, *, request_id: str | None, oip: bool = False
                   ) -> Response:
    """The JSON error body for ``error``; unexpected errors are logged and answer 500.

    OIP routes answer ``{"error": message}`` as the protocol says; ``/predict`` adds the
    error code and the request id.
    """
    if isinstance(error, ForgelineError):
        status, message, code = status_of(error), str(error), error.code
    else:
        log.error("request %s failed: %s: %s", request_id, type(error).__name__, error,
                  exc_info=error)
        status, code = 500, "INTERNAL_ERROR"
        message = f"The model failed on this request ({type(error).__name__}: {error})."
    payload: dict[str, Any] = {"error": message}
    if not oip:
        payload.update(code=code, request_id=request_id)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response(payload, status, headers)


async def read_json(request: Request | RawRequest, limit: int) -> Any:
    """The request body parsed as JSON, refusing bodies over ``limit`` bytes.

    Raises:
        BodyTooLarge: Content-Length or the bytes received exceed ``limit``.
        InvalidInput: the body is empty or not JSON.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(_too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a chunked body has no Content-Length
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(_too_large(None, limit))
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise InvalidInput("The request body is empty: send a JSON object.")
    return parse_json(body)


def _too_large(size: int | None, limit: int) -> str:
    given = f"{size} bytes" if size is not None else "more than that"
    return (f"The request body is too large: {given}, the limit is {limit} bytes "
            "(max_body_bytes). Send fewer records per request.")


def check_auth(request: Request | RawRequest, token: str | None) -> None:
    """Raise :class:`Unauthorized` unless ``token`` is None or given as a bearer token."""
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the time taken does not tell how much of the token was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("latin-1"), token.encode("utf-8")):
        raise Unauthorized("Missing or invalid bearer token.",
                           hint="Send the header Authorization: Bearer <token>.")


def request_id(request: Request | RawRequest) -> str:
    """The request id the middleware chose (the client's X-Request-ID, or a new one)."""
    return str(request.scope.get("state", {}).get("request_id") or new_request_id())


def new_request_id() -> str:
    """32 random hex digits, like ``uuid4().hex``.

    From ``random`` (seeded from the OS once per process, and again in a forked child),
    not ``os.urandom``: ids need to be unique, not secret, and a urandom call can cost
    tens of microseconds where system calls are slow.
    """
    return f"{random.getrandbits(128):032x}"


class RawRequest:
    """What the endpoints read of a request (``headers``, ``stream()``, ``scope``), straight
    from ASGI: a Starlette ``Request`` costs more than scoring one row."""

    __slots__ = ("_headers", "_receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:  # ASGI gives the names in lower case
            self._headers = {k.decode("latin-1"): v.decode("latin-1")
                             for k, v in self.scope["headers"]}
        return self._headers

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            body = message.get("body", b"")
            if body:
                yield body
            if not message.get("more_body", False):
                return


Endpoint = Callable[[Any], Awaitable[Response]]


class RequestMiddleware:
    """Gives every HTTP request an id (echoed in ``X-Request-ID``) and records its metrics.

    A pure ASGI middleware: Starlette's BaseHTTPMiddleware would cost a task per request.
    Metrics are labelled by the route template (``/v2/models/{name}/infer``), never the
    raw path, so a client cannot blow up their number.

    ``direct`` maps ``(method, path)`` of the hot routes to their endpoint, which is then
    called here with a :class:`RawRequest`, past FastAPI's routing and dependency
    machinery (the same endpoint FastAPI would call, so both ways answer alike).
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics,
                 direct: Mapping[tuple[str, str], Endpoint] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = given if given is not None and _REQUEST_ID.match(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        start = time.perf_counter()
        self.metrics.in_flight.inc()
        endpoint = self.direct.get((scope["method"], scope["path"]))
        try:
            if endpoint is not None:
                response = await endpoint(RawRequest(scope, receive))
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            if endpoint is not None:
                path = scope["path"]
            else:
                route = scope.get("route")
                path = getattr(route, "path", None) or _UNMATCHED
            self.metrics.observe_request(path, scope["method"], status,
                                         time.perf_counter() - start)
