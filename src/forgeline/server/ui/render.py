"""Rendering the web UI's pages: one Jinja2 environment, the filters its templates use,
and the error page every UI route answers with instead of a JSON body.

Templates live in ``templates/`` beside this module and extend ``base.html``. Every page is a
plain page load (links and forms navigate), so each URL is a page that can be bookmarked,
shared and reloaded (a saved view is its URL); htmx only fetches small fragments (a running
run's status, the column picker's keys) and swaps the runs table's content when a filter
is applied (the URL still changes to the view's).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from forgeline.errors import ForgelineError
from forgeline.server.http import error_json
from forgeline.util.time import run_duration
from forgeline.version import __version__

__all__ = ["UI_PREFIX", "error_page", "fmt_number", "fmt_time", "page",
           "url_for_static"]

UI_PREFIX = "/ui"


def fmt_time(ms: int | None) -> str:
    """Epoch milliseconds as ``2026-12-03 22:10:05`` (UTC); an empty string for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_number(value: Any) -> str:
    """A metric value in at most 5 significant digits (``0.91234``, ``1.2346e+06``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    x = float(value)
    if math.isnan(x):
        return "NaN"
    if x == 0 or 1e-4 <= abs(x) < 1e6:
        return f"{x:.5g}" if not float(x).is_integer() or abs(x) >= 1e5 else f"{int(x)}"
    return f"{x:.4e}"


def url_for_static(path: str) -> str:
    """The URL of a static file, with the version so browsers cache it safely."""
    return f"{UI_PREFIX}/static/{path}?v={__version__}"


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("forgeline.server.ui", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(time=fmt_time, number=fmt_number)
    env.globals.update(duration=run_duration, static=url_for_static, ui=UI_PREFIX,
                       version=__version__)
    return env


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with what every page shows (who is signed in, where we are).

    A request from htmx that swaps the page's content (``HX-Target: content``: the runs
    filter) gets only that part, ``<main id="content">``: less to render and to parse.
    """
    who = request.scope.get("forgeline.token")
    found = _env().get_template(template)
    values = {"request": request, "auth": request.app.state.auth,
              "who": None if who is None else {"name": who.name, "role": who.role.value},
              "path": request.url.path, **context}
    if request.headers.get("hx-target") == "content" and "content" in found.blocks:
        body = "".join(found.blocks["content"](found.new_context(values)))
        return HTMLResponse(f'<main id="content">{body}</main>', status_code=status)
    return HTMLResponse(found.render(**values), status_code=status)


_POSITION = re.compile(r"at position (\d+)")


def error_position(error: ForgelineError) -> int | None:
    """The 1-based position a filter error names (``Invalid filter at position 7 ...``)."""
    found = _POSITION.search(error.message)
    return int(found.group(1)) if found else None


def error_page(request: Request, error: ForgelineError, status: int) -> Response:
    """The page shown for an error: the sign-in form for 401, else the message and what
    to do, never a traceback. A script asking for JSON (a chart's data) gets the error as
    JSON, so it can show the message."""
    if "application/json" in request.headers.get("accept", ""):
        return error_json(error, status)
    if status == 401:
        return page(request, "login.html", status, message=error.message,
                    next=request.url.path + (f"?{request.url.query}" if request.url.query
                                             else ""))
    return page(request, "error.html", status, status_code=status, message=error.message,
                hint=error.hint or "")
