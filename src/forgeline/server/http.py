"""HTTP plumbing of the team server: JSON replies, error bodies, request bodies and limits.

Errors have one shape, ``{"error": {"code", "message", "hint"}}``, with the status
``errors.STATUS`` gives the code, so a client can raise the same class with the same
message (:func:`forgeline.store.http.transport.error_from_body`). Request validation
errors answer 400 naming the field, unknown routes 404 naming the route, a body over
the limit 413; anything unexpected is answered 500 with a message (and logged with its traceback
by uvicorn), and the server goes on. Routes with another error shape (the MLflow routes)
register their own renderer for their prefixes with :func:`add_error_renderer`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forgeline.errors import ForgelineError, InvalidInput, NotFound, http_status
from forgeline.store.http.wire import API_PREFIX
from forgeline.util.json import parse_json

__all__ = ["BodyLimit", "BodyTooLarge", "ErrorRenderer", "add_error_renderer", "error_json",
           "install_errors",
           "json_body", "reply"]

ErrorRenderer = Callable[[Request, ForgelineError, int], Response]
"""Builds the response to a request for an error and its HTTP status (for routes with their
own shape: MLflow's JSON, the web UI's pages)."""


class BodyTooLarge(InvalidInput):
    """A request body over the server's limit (HTTP 413)."""

    status = 413


def reply(payload: Any, status: int = 200) -> Response:
    """``payload`` (plain JSON values, see :mod:`~forgeline.store.http.wire`) as JSON."""
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (a route dependency); InvalidInput otherwise."""
    body = await request.body()
    if not body.strip():
        raise InvalidInput("The request body is empty: send a JSON object.",
                           hint="Send Content-Type: application/json with a JSON object.")
    data = parse_json(body)
    if not isinstance(data, dict):
        raise InvalidInput(f"The request body must be a JSON object, not {type(data).__name__}.",
                           hint="Send the fields as a JSON object: {\"name\": ...}.")
    return data


def _status(error: ForgelineError) -> int:
    return int(getattr(error, "status", 0) or http_status(error))


def error_json(error: ForgelineError, status: int) -> Response:
    """An error in Forgeline's JSON shape (the REST API's, and the web UI's data routes)."""
    response = reply({"error": {"code": error.code, "message": error.message,
                                "hint": error.hint}}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def add_error_renderer(app: FastAPI, prefixes: tuple[str, ...], render: ErrorRenderer) -> None:
    """Render the errors of requests under ``prefixes`` with ``render`` (e.g. MLflow's
    ``{"error_code", "message"}``) instead of Forgeline's shape."""
    app.state.error_renderers = [*getattr(app.state, "error_renderers", []), (prefixes, render)]


def _respond(request: Request, error: ForgelineError, status: int) -> Response:
    path = request.url.path
    for prefixes, render in getattr(request.app.state, "error_renderers", ()):
        if path.startswith(prefixes):
            return render(request, error, status)
    return error_json(error, status)


def _field(loc: tuple[Any, ...]) -> str:
    where = {"query": "query parameter", "path": "path parameter", "header": "header",
             "body": "body field", "cookie": "cookie"}.get(str(loc[0]), str(loc[0]))
    name = ".".join(str(p) for p in loc[1:]) or "(the whole body)"
    return f"{where} {name!r}"


def install_errors(app: FastAPI) -> None:
    """Answer every error in the shapes described above."""

    async def forgeline_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ForgelineError)
        return _respond(request, error, _status(error))

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        first = error.errors()[0] if error.errors() else {"loc": ("body",), "msg": "invalid"}
        given = first.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        return _respond(request, InvalidInput(
            f"Invalid {_field(tuple(first['loc']))}: {first['msg']}{shown}.",
            hint="Fix it and send the request again."), 400)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        route = f"{request.method} {request.url.path}"
        if error.status_code == 404:
            found: ForgelineError = NotFound(
                f"No route {route}.",
                hint=f"The REST API is under {API_PREFIX}/; its routes are listed at /docs.")
        elif error.status_code == 405:
            found = InvalidInput(f"Method {request.method} is not allowed on {request.url.path}.",
                                 hint="See the routes and their methods at /docs.")
        else:
            found = ForgelineError(f"{route}: {error.detail}")
        return _respond(request, found, error.status_code)

    async def unexpected(request: Request, error: Exception) -> Response:
        # Starlette raises the error again once this answer is sent: uvicorn logs it with
        # its traceback, and the server goes on.
        return _respond(request, ForgelineError(
            f"The server failed on {request.method} {request.url.path} "
            f"({type(error).__name__}: {error}).",
            hint="This is a bug in the server; its log has the details. Report it."), 500)

    app.add_exception_handler(ForgelineError, forgeline_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413 (pure ASGI middleware).

    A declared Content-Length over the limit is refused before the app runs. A body that
    grows past the limit while it streams in (chunked) makes ``receive`` raise
    :class:`BodyTooLarge` in the app; whatever the app then answers is replaced by the 413.
    ``PUT`` requests under one of ``app.state.upload_prefixes`` (artifact uploads) have
    the larger ``upload_limit`` instead (None: no limit).
    """

    def __init__(self, app: ASGIApp, state: Any, limit: int, upload_limit: int | None) -> None:
        self.app = app
        self.state = state
        self.limit = limit
        self.upload_limit = upload_limit

    def _limit_for(self, scope: Scope) -> int | None:
        if scope["method"] == "PUT" and scope["path"].startswith(
                tuple(getattr(self.state, "upload_prefixes", ()))):
            return self.upload_limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(int(declared), limit)(scope, receive, send)
            return
        size = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal size, exceeded
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    exceeded = True
                    raise BodyTooLarge(_too_large_message(None, limit))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the 413 below answers instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _too_large(None, limit)(scope, receive, send)


def _too_large_message(size: int | None, limit: int) -> str:
    given = f"{size} bytes" if size is not None else "more than that"
    return (f"The request body is too large: {given}, the limit is {limit} bytes (the "
            "server's max_body_bytes).")


def _too_large(size: int | None, limit: int) -> Response:
    return error_json(BodyTooLarge(
        _too_large_message(size, limit),
        hint="Send smaller batches, or raise the limit with `forgeline server "
             "--max-body-bytes`."), 413)
