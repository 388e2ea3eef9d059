"""Signing in to the web UI: a browser cannot send a bearer header when it follows a link,
so the UI asks for the token once and keeps its secret in an HttpOnly, SameSite=Strict
cookie (:data:`forgeline.server.auth.SESSION_COOKIE`) that the same token check reads.

With auth off (a server on loopback) there is nothing to sign in to. A wrong token is
refused on the form with the reason; nothing is stored.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from forgeline.server.auth import SESSION_COOKIE
from forgeline.server.ui.render import UI_PREFIX, page
from forgeline.store.tokens import secret_sha256

__all__ = ["router", "safe_next"]

router = APIRouter()
MAX_AGE_S = 7 * 24 * 3600


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return f"{UI_PREFIX}/"
    return target


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return page(request, "login.html", message="", next=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    secret = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    if not request.app.state.auth:
        return RedirectResponse(target, 303)
    token = (await run_in_threadpool(request.app.state.store.find_token, secret_sha256(secret))
             if secret else None)
    if token is None:
        return page(request, "login.html", 401, next=target,
                    message="That token is unknown or revoked." if secret
                    else "Paste a token to sign in.")
    response = RedirectResponse(target, 303)
    response.set_cookie(SESSION_COOKIE, secret, max_age=MAX_AGE_S, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse(f"{UI_PREFIX}/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
