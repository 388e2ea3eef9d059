"""Errors in MLflow's shape: ``{"error_code": ..., "message": ...}`` with MLflow's status.

One table maps each Forgeline error code to MLflow's error code and HTTP status; every
MLflow route is a :class:`MlflowRoute`, which answers any error raised while handling a
request (its dependencies, such as the token check, included) from that table, so the
MLflow client raises the ``MlflowException`` it would raise against MLflow's own server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import Response

from forgeline.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    ForgelineError,
    IntegrityError,
    InvalidInput,
    InvalidSpec,
    NotFound,
    StoreError,
    Unauthorized,
)

__all__ = ["ERRORS", "MlflowRoute", "endpoint_not_found", "error_response", "json",
           "render_error", "unsupported"]

log = logging.getLogger("forgeline.server.mlflow")

# Forgeline error code -> (MLflow error code, HTTP status), as MLflow's server answers them.
ERRORS: dict[str, tuple[str, int]] = {
    NotFound.code: ("RESOURCE_DOES_NOT_EXIST", 404),
    AlreadyExists.code: ("RESOURCE_ALREADY_EXISTS", 400),
    InvalidInput.code: ("INVALID_PARAMETER_VALUE", 400),
    InvalidSpec.code: ("INVALID_PARAMETER_VALUE", 400),
    Conflict.code: ("INVALID_STATE", 400),
    Unauthorized.code: ("UNAUTHENTICATED", 401),
    Forbidden.code: ("PERMISSION_DENIED", 403),
    IntegrityError.code: ("DATA_LOSS", 500),
    StoreError.code: ("TEMPORARILY_UNAVAILABLE", 503),
    ForgelineError.code: ("INTERNAL_ERROR", 500),
}
_HTTP = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
         404: "ENDPOINT_NOT_FOUND", 405: "ENDPOINT_NOT_FOUND", 409: "RESOURCE_CONFLICT",
         413: "RESOURCE_EXHAUSTED", 429: "REQUEST_LIMIT_EXCEEDED", 503: "TEMPORARILY_UNAVAILABLE"}


def json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def error_response(error_code: str, message: str, status: int) -> Response:
    return json({"error_code": error_code, "message": message}, status)


def _forgeline_error(error: ForgelineError) -> Response:
    code, status = ERRORS.get(error.code, ERRORS[ForgelineError.code])
    # An HTTP-only subclass (a body over the size limit: 413) keeps its own status.
    return error_response(code, str(error), int(getattr(error, "status", 0) or status))


def render_error(request: Request, error: ForgelineError, status: int) -> Response:
    """MLflow's shape for an error the app answers outside a route (see
    :func:`forgeline.server.http.add_error_renderer`)."""
    code = ERRORS.get(error.code, ERRORS[ForgelineError.code])[0]
    return error_response(_HTTP.get(status, code) if status in (404, 405, 413) else code,
                          str(error), status)


def _http_error(error: HTTPException) -> Response:
    detail = error.detail if isinstance(error.detail, str) else orjson.dumps(error.detail).decode()
    code = _HTTP.get(error.status_code, "INTERNAL_ERROR" if error.status_code >= 500
                     else "BAD_REQUEST")
    return error_response(code, detail, error.status_code)


def unsupported(what: str) -> InvalidInput:
    """The error for a part of MLflow's API that Forgeline does not map (400, so the client
    says why instead of retrying)."""
    return InvalidInput(f"{what} is not supported by Forgeline's MLflow-compatible API.",
                        hint="See 'MLflow client compatibility' in Forgeline's README.")


async def endpoint_not_found(request: Request) -> Response:
    return error_response(
        "ENDPOINT_NOT_FOUND",
        f"{request.method} {request.url.path} is not supported by Forgeline's "
        "MLflow-compatible API (see 'MLflow client compatibility' in Forgeline's README).", 404)


class MlflowRoute(APIRoute):
    """A route whose errors answer in MLflow's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ForgelineError as e:
                return _forgeline_error(e)
            except HTTPException as e:
                return _http_error(e)
            except RequestValidationError as e:
                return error_response("INVALID_PARAMETER_VALUE", str(e), 400)
            except Exception:
                log.exception("MLflow route %s %s failed", request.method, request.url.path)
                return error_response("INTERNAL_ERROR", "Internal error in the Forgeline "
                                      "server; its log has the details.", 500)

        return guarded
