"""The web UI of the team server: server-rendered pages (Jinja2) over the same store, behind
the same tokens, with small vendored scripts (htmx for partial updates, uPlot for charts;
their licences beside them in ``static/vendor``). Nothing is fetched from elsewhere at run
time, and nothing is built at install time.

Pages are under :data:`~forgeline.server.ui.render.UI_PREFIX`; each module holds one page's
routes. Errors on UI routes are pages too (:func:`~forgeline.server.ui.render.error_page`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from forgeline.server.http import add_error_renderer
from forgeline.server.ui import compare, models, monitoring, run, run_artifacts, runs, session
from forgeline.server.ui.render import UI_PREFIX, error_page

__all__ = ["UI_PREFIX", "install"]

STATIC = Path(__file__).parent / "static"


class _Static(StaticFiles):
    """The UI's scripts and styles: their URLs carry the version (``?v=``), so a browser
    may keep them until the next release."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def install(app: FastAPI) -> None:
    """Add the UI's routes, its static files and its error pages to ``app``."""
    for module in (session, runs, run, run_artifacts, compare, models, monitoring):
        app.include_router(module.router, prefix=UI_PREFIX, include_in_schema=False)
    app.mount(f"{UI_PREFIX}/static", _Static(directory=STATIC), name="ui-static")
    add_error_renderer(app, (UI_PREFIX,), error_page)

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse(f"{UI_PREFIX}/", 307)
