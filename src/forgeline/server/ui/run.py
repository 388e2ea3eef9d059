"""The page of one run: what it is (status, times, parent and children), what it recorded
(params, latest metrics, tags, datasets, code version), a chart per metric and its
artifacts (:mod:`~forgeline.server.ui.run_artifacts` serves and previews them).

A chart asks :func:`metric_series` for its points: at most :data:`MAX_POINTS` per request,
bucketed by the store (:meth:`~forgeline.store.base.Store.get_metric_series`), so a metric
of a million steps costs the browser what one of two thousand does; a zoom asks again for
its step range. While a run is RUNNING the page polls a small fragment (:func:`live`)
every few seconds; its answer tells the page's script to refresh the charts in view, adds
a card for each metric the run began logging since, and stops the polling once the run has
ended.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from forgeline.entities import GIT_COMMIT, GIT_DIRTY, SYSTEM_TAG_PREFIX, Role, Run
from forgeline.errors import NotFound
from forgeline.server.auth import require
from forgeline.server.http import reply
from forgeline.server.ui import run_artifacts
from forgeline.server.ui.render import UI_PREFIX, page
from forgeline.store.base import Store
from forgeline.tracking.context import COMMAND
from forgeline.training.layout import REPORT_PATH
from forgeline.util.files import format_bytes

__all__ = ["MAX_CHILDREN", "MAX_POINTS", "chart_src", "router", "series_json"]

router = APIRouter(dependencies=[Depends(require(Role.READER))])
MAX_POINTS = 2000  # per series and request: what a chart a few hundred pixels wide can show
MAX_CHILDREN = 200
POLL_S = 5
_SYSTEM = (SYSTEM_TAG_PREFIX, "mlflow.")


def _store(request: Request) -> Store:
    return request.app.state.store


def chart_src(path: str, key: str) -> str:
    """The URL a chart of metric ``key`` loads from (``path`` is the route's folder)."""
    return f"{UI_PREFIX}{path}/metrics/{quote(key, safe='')}"


def series_json(store: Store, run_id: str, key: str, label: str, max_points: int,
                min_step: int | None, max_step: int | None) -> dict[str, Any]:
    """One series of a chart, in the shape ``forgeline.js`` draws."""
    found = store.get_metric_series(run_id, key, max_points=max_points, min_step=min_step,
                                    max_step=max_step)
    return {"label": label, "run_id": run_id, "steps": list(found.steps),
            "values": list(found.values), "total": found.total,
            "downsampled": found.downsampled}


def _cards(run: Run) -> list[dict[str, str]]:
    return [{"key": k, "src": chart_src(f"/runs/{run.run_id}", k)} for k in sorted(run.metrics)]


def _relatives(store: Store, run: Run) -> tuple[Run | None, list[Run]]:
    parent = None
    if run.parent_run_id:
        try:
            parent = store.get_run(run.parent_run_id)
        except NotFound:  # the parent was deleted: its id is still shown
            parent = None
    children = list(store.search_runs(
        [run.experiment_id], filter=f"attributes.parent_run_id = '{run.run_id}'",
        order_by=["attributes.start_time ASC"], max_results=MAX_CHILDREN))
    return parent, children


def _labels(tags: dict[str, str]) -> dict[str, Any] | None:
    """Where the run's training data got its labels (``forgeline label``): the labelling
    run, each source with its version, the LLM; None when the data was not labelled here."""
    run_id = tags.get("forgeline.labels.run")
    if not run_id:
        return None
    try:
        sources = json.loads(tags.get("forgeline.labels.sources", "{}"))
    except ValueError:
        sources = {}
    return {"run": run_id, "llm": tags.get("forgeline.labels.llm", ""),
            "sources": sorted((str(k), str(v)) for k, v in dict(sources).items())}


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, dir: str = "", preview: str = "") -> Response:
    store = _store(request)
    run = store.get_run(run_id)
    experiment = store.get_experiment(run.experiment_id)
    parent, children = _relatives(store, run)
    tags = sorted(run.tags.items())
    browser = run_artifacts.browse(store, request.app.state.artifacts, run.run_id, dir, preview)
    return page(
        request, "run.html", run=run, experiment=experiment, parent=parent, children=children,
        more_children=len(children) >= MAX_CHILDREN, params=sorted(run.params.items()),
        user_tags=[(k, v) for k, v in tags if not k.startswith(_SYSTEM)],
        system_tags=[(k, v) for k, v in tags if k.startswith(_SYSTEM)],
        datasets=store.get_run_datasets(run.run_id),
        code={"commit": run.tags.get(GIT_COMMIT, ""),
              "dirty": run.tags.get(GIT_DIRTY, "").lower() == "true",
              "command": run.tags.get(COMMAND, "")},
        labels=_labels(run.tags),
        report=browser.report_url, artifacts=browser, cards=_cards(run), poll_s=POLL_S,
        report_path=REPORT_PATH, size=format_bytes)


@router.get("/runs/{run_id}/live")
def live(request: Request, run_id: str, k: list[str] = Query(default=[])) -> Response:
    """The run's status and latest metrics (polled while it runs), with a card for each
    metric not among the charts the page has (``k``)."""
    run = _store(request).get_run(run_id)
    shown = set(k)
    response = page(request, "run_live.html", run=run, poll_s=POLL_S, oob=True,
                    new_cards=[c for c in _cards(run) if c["key"] not in shown])
    response.headers["HX-Trigger"] = "forgeline-refresh"  # forgeline.js: redraw charts in view
    return response


@router.get("/runs/{run_id}/metrics/{key:path}")
def metric_series(request: Request, run_id: str, key: str, min_step: int | None = None,
                  max_step: int | None = None) -> Response:
    """``{"series": [one]}``: at most MAX_POINTS points of metric ``key`` in the step range."""
    store = _store(request)
    return reply({"series": [series_json(store, run_id, key, key, MAX_POINTS, min_step,
                                         max_step)]})
