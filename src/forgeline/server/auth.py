"""Access control of the team server: bearer tokens with roles.

A request sends ``Authorization: Bearer <secret>`` (a browser signed in to the web UI sends
it in the :data:`SESSION_COOKIE` cookie instead); the server looks up the secret's
sha256 (:func:`forgeline.store.tokens.secret_sha256`) with ``store.find_token``. Roles
are ordered, each allowing what the ones before it allow (:class:`~forgeline.entities.Role`):

- ``reader``: every read;
- ``writer``: logging runs, artifacts, datasets and monitoring results, registering
  versions, moving aliases of models that are not protected;
- ``admin``: moving or deleting aliases of protected models (a registered model tagged
  ``forgeline.protected=true``), deleting, protecting, and managing tokens.

Use :func:`require` as a route dependency (``Depends(require(Role.WRITER))``), or call
:func:`authorize` inside a route whose role depends on what it touches. With auth off
(``app.state.auth`` False) both do nothing.

A token found is remembered for :data:`CACHE_S` seconds per process, so a busy client
costs no database read per request; a deleted token therefore stops working within that
time. Unknown secrets are never cached: a token just created works at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from forgeline.entities import ApiToken, Role
from forgeline.errors import Forbidden, NotFound, Unauthorized
from forgeline.store.base import Store
from forgeline.store.tokens import secret_sha256

__all__ = ["CACHE_S", "PROTECTED_TAG", "SESSION_COOKIE", "authorize", "is_protected",
           "require", "require_alias_role", "token_of"]

PROTECTED_TAG = "forgeline.protected"  # = "true" on a registered model: its aliases are an admin's
CACHE_S = 5.0
SESSION_COOKIE = "forgeline_token"  # the web UI keeps the signed-in token's secret here
_CREATE_HINT = ("Create one with `forgeline server token create --role writer --name NAME` "
                "on the server's store and send it as Authorization: Bearer <secret> "
                "(Forgeline clients read it from FORGELINE_TOKEN).")


class _TokenCache:
    """sha256 -> (token, when it was read); thread safe, bounded."""

    def __init__(self, ttl_s: float, size: int = 1024) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._items: dict[str, tuple[ApiToken, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> ApiToken | None:
        with self._lock:
            found = self._items.get(digest)
        if found is None or time.monotonic() - found[1] > self.ttl_s:
            return None
        return found[0]

    def put(self, digest: str, token: ApiToken) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[digest] = (token, time.monotonic())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _cache(connection: HTTPConnection) -> _TokenCache:
    state = connection.app.state
    cache = getattr(state, "token_cache", None)
    if cache is None:
        cache = state.token_cache = _TokenCache(CACHE_S)
    return cache


def _secret(connection: HTTPConnection) -> str:
    header = connection.headers.get("authorization")
    if not header:
        cookie = connection.cookies.get(SESSION_COOKIE, "").strip()
        if cookie:  # the web UI's sign-in (HttpOnly, SameSite=Strict: never sent cross-site)
            return cookie
        raise Unauthorized("This server needs a token and the request sent none.",
                           hint=_CREATE_HINT)
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("The Authorization header is not 'Bearer <secret>'.",
                           hint=_CREATE_HINT)
    return secret.strip()


async def _token(connection: HTTPConnection) -> ApiToken:
    """The token of the request (read once per request); Unauthorized if none is valid."""
    known = connection.scope.get("forgeline.token")
    if known is not None:
        return known
    digest = secret_sha256(_secret(connection))
    cache = _cache(connection)
    token = cache.get(digest)
    if token is None:
        store: Store = connection.app.state.store
        token = await run_in_threadpool(store.find_token, digest)
        if token is None:
            raise Unauthorized("Unknown or revoked token.", hint=_CREATE_HINT)
        cache.put(digest, token)
    connection.scope["forgeline.token"] = token
    return token


async def token_of(connection: HTTPConnection) -> ApiToken | None:
    """The request's token (None with auth off); Unauthorized without a valid one."""
    if not connection.app.state.auth:
        return None
    return await _token(connection)


async def authorize(connection: HTTPConnection, role: Role, why: str = ""
                    ) -> ApiToken | None:
    """Check that the request's token allows ``role``; the token, or None with auth off.

    ``why`` says, in the message, why the request needs that role (e.g. a protected model).

    Raises:
        Unauthorized: no token, or one the store does not know (HTTP 401).
        Forbidden: the token's role is below ``role``; the message names both (HTTP 403).
    """
    if not connection.app.state.auth:
        return None
    token = await _token(connection)
    if not token.role.allows(role):
        raise Forbidden(
            f"Token {token.name!r} has the role {token.role.value}; this request needs the "
            f"role {role.value}{f' ({why})' if why else ''}.",
            hint=f"Ask an admin for a token with the role {role.value}: `forgeline server "
                 f"token create --role {role.value} --name NAME`.")
    return token


def require(role: Role) -> Callable[[HTTPConnection], Awaitable[ApiToken | None]]:
    """A FastAPI dependency that lets only tokens allowing ``role`` through.

    Example: ``@router.post("/runs", dependencies=[Depends(require(Role.WRITER))])``.
    """

    async def dependency(connection: HTTPConnection) -> ApiToken | None:
        return await authorize(connection, role)

    dependency.__name__ = f"require_{role.value}"
    return dependency


def is_protected(store: Store, name: str) -> bool:
    """Whether the registered model ``name`` is protected (its aliases need an admin); a
    model not registered (yet) is not."""
    try:
        model = store.get_registered_model(name)
    except NotFound:
        return False
    return model.tags.get(PROTECTED_TAG, "").lower() == "true"


async def require_alias_role(connection: HTTPConnection, name: str) -> None:
    """Moving or deleting an alias of ``name``: admin if the model is protected, else writer."""
    if not connection.app.state.auth:
        return
    await authorize(connection, Role.WRITER)
    store: Store = connection.app.state.store
    if await run_in_threadpool(is_protected, store, name):
        await authorize(connection, Role.ADMIN,
                        f"model {name!r} is protected: tag {PROTECTED_TAG}=true")
