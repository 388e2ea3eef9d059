"""REST routes of monitoring history (writer to record, reader to query) and of tokens
(admin only), plus the server's health and the caller's identity (no role needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from forgeline.entities import Role
from forgeline.server.auth import authorize, require
from forgeline.server.http import json_body, reply
from forgeline.store.base import Store
from forgeline.store.http import wire
from forgeline.store.http.wire import READERS, required
from forgeline.version import __version__

__all__ = ["router"]

router = APIRouter()
READ = [Depends(require(Role.READER))]
WRITE = [Depends(require(Role.WRITER))]
ADMIN = [Depends(require(Role.ADMIN))]
_str = READERS["str"]


def _store(request: Request) -> Store:
    return request.app.state.store


@router.get("/health")
def health(request: Request) -> Response:
    """Whether the server is up; no token needed."""
    return reply({"status": "ok", "version": __version__, "auth": request.app.state.auth})


@router.get("/whoami")
async def whoami(request: Request) -> Response:
    """The caller's token (name and role); null with auth off."""
    token = await authorize(request, Role.READER)
    return reply({"token": None if token is None else wire.dump_token(token)})


# -- monitoring history ---------------------------------------------------------------------
@router.post("/monitoring", dependencies=WRITE)
def record_monitoring(request: Request, body: dict[str, Any] = Depends(json_body)) -> Response:
    """Keep one monitoring run's results (the body is the record; a repeated id is a no-op)."""
    _store(request).record_monitoring(wire.load_monitoring(body, "body"))
    return reply({})


@router.get("/monitoring", dependencies=READ)
def get_monitoring_history(request: Request, model: str, since: int | None = None,
                           until: int | None = None, limit: int = 10_000) -> Response:
    """The records of ``model`` whose window ends in [since, until] (ms), oldest first."""
    found = _store(request).get_monitoring_history(model, since, until, limit)
    return reply({"records": [wire.dump_monitoring(r) for r in found]})


# -- tokens ---------------------------------------------------------------------------------
@router.get("/tokens", dependencies=ADMIN)
def list_tokens(request: Request) -> Response:
    return reply({"tokens": [wire.dump_token(t) for t in _store(request).list_tokens()]})


@router.post("/tokens", dependencies=ADMIN)
def create_token(request: Request, body: dict[str, Any] = Depends(json_body)) -> Response:
    """Keep a token by the sha256 of its secret (the secret never reaches the server)."""
    role: Any = required(body, "role", _str)  # the store checks it is a Role
    token = _store(request).create_token(required(body, "name", _str), role,
                                         required(body, "secret_sha256", _str))
    return reply(wire.dump_token(token))


@router.get("/tokens/lookup", dependencies=ADMIN)
def find_token(request: Request, secret_sha256: str) -> Response:
    token = _store(request).find_token(secret_sha256)
    return reply({"token": None if token is None else wire.dump_token(token)})


@router.delete("/tokens/{name}", dependencies=ADMIN)
def delete_token(request: Request, name: str) -> Response:
    _store(request).delete_token(name)
    cache = getattr(request.app.state, "token_cache", None)
    if cache is not None:
        cache.clear()  # revoked at once in this process (others within auth.CACHE_S)
    return reply({})
