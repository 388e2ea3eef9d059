"""The page comparing runs (2 to :data:`MAX_RUNS`): each metric's curves overlaid, a table
of the params and latest metrics that differ, parallel coordinates over chosen params and a
metric, and a scatter of a param against a metric.

The runs are in the URL (``?runs=ID&runs=ID``, what the runs table's "Compare selected"
sends), and so are the plots' choices: a comparison is a link. A chart's series share a
budget of :data:`CHART_POINTS` points, so 100 runs cost the browser about what two do:
each run gets an equal share of it, between :data:`MIN_RUN_POINTS` and
:data:`~forgeline.server.ui.run.MAX_POINTS`, bucketed by the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from forgeline.entities import Role, Run
from forgeline.errors import InvalidInput, NotFound
from forgeline.server.auth import require
from forgeline.server.http import reply
from forgeline.server.ui.plots import Row, parallel_coordinates, scatter
from forgeline.server.ui.render import UI_PREFIX, page
from forgeline.server.ui.run import MAX_POINTS, series_json
from forgeline.store.base import Store

__all__ = ["CHART_POINTS", "MAX_RUNS", "MIN_RUNS", "router", "run_points"]

router = APIRouter(dependencies=[Depends(require(Role.READER))])
MIN_RUNS, MAX_RUNS = 2, 200
CHART_POINTS = 4000
MIN_RUN_POINTS = 20
MAX_AXES = 8  # params on the parallel coordinates by default
# The colours forgeline.js gives a chart's series, in order: a run's chip matches its curves.
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d",
          "#4d7c0f", "#7c3aed", "#b45309")


def run_points(runs: int) -> int:
    """The points each of ``runs`` series of one chart gets."""
    return max(MIN_RUN_POINTS, min(MAX_POINTS, CHART_POINTS // max(1, runs)))


def _ids(runs: list[str]) -> list[str]:
    """The run ids asked for, once each, in order."""
    return list(dict.fromkeys(r.strip() for r in runs if r.strip()))


def _check_count(ids: list[str]) -> None:
    if len(ids) < MIN_RUNS:
        raise InvalidInput(
            f"Choose at least {MIN_RUNS} runs to compare ({len(ids)} chosen).",
            hint="Tick two or more runs in an experiment's runs table, then press "
                 "\"Compare selected\".")
    if len(ids) > MAX_RUNS:
        raise InvalidInput(
            f"Compare at most {MAX_RUNS} runs at once ({len(ids)} chosen).",
            hint="Narrow the runs table with a filter and choose fewer runs.")


def _labels(runs: list[Run]) -> list[str]:
    """Each run's name, with the start of its id where names repeat."""
    names = [r.name or r.run_id[:8] for r in runs]
    return [n if names.count(n) == 1 else f"{n} ({r.run_id[:6]})"
            for n, r in zip(names, runs, strict=True)]


def _store(request: Request) -> Store:
    return request.app.state.store


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _load(store: Store, ids: list[str]) -> list[Run]:
    """The runs, in the order of ``ids``, in one search (not a read per run); NotFound
    names the first id that is no run."""
    experiments = [e.experiment_id for e in store.list_experiments()]
    found = {r.run_id: r for r in store.search_runs(
        experiments, filter=f"attributes.run_id IN ({', '.join(map(_literal, ids))})",
        max_results=MAX_RUNS)} if experiments else {}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"Run {missing[0]!r} not found" + (
            f" (nor {len(missing) - 1} more of the runs to compare)." if len(missing) > 1
            else "."), hint="Choose the runs again from an experiment's runs table.")
    return [found[i] for i in ids]


@dataclass(frozen=True, slots=True)
class DiffRow:
    key: str
    kind: str  # params or metrics
    values: list[Any]
    differs: bool


def _diff(runs: list[Run], kind: str) -> list[DiffRow]:
    keys = sorted({k for r in runs for k in getattr(r, kind)})
    rows = []
    for key in keys:
        values = [getattr(r, kind).get(key) for r in runs]
        shown = {repr(v) for v in values}  # NaN != NaN, but reads the same
        rows.append(DiffRow(key, kind, values, len(shown) > 1))
    return rows


def _choices(request: Request, params: list[DiffRow], metrics: list[DiffRow]
             ) -> dict[str, Any]:
    """The params and metric the plots show: the URL's, else the params that differ (those
    most runs have first, at most MAX_AXES, in name order) and the metric most runs have."""
    q = request.query_params
    keys = [p.key for p in params]

    def most_runs(rows: list[DiffRow]) -> list[str]:  # stable: ties keep name order
        return [r.key for r in sorted(rows, key=lambda r: -sum(v is not None
                                                              for v in r.values))]

    if q.get("chosen"):
        chosen = [k for k in q.getlist("pc") if k in keys]
    else:
        top = set(most_runs([p for p in params if p.differs] or params)[:MAX_AXES])
        chosen = [k for k in keys if k in top]
    metric_keys = [m.key for m in metrics]
    metric = q.get("metric") if q.get("metric") in metric_keys else \
        next(iter(most_runs(metrics)), None)
    x = q.get("x") if q.get("x") in keys else next(
        iter(most_runs([p for p in params if p.key in chosen] or params)), None)
    return {"pc": chosen, "metric": metric, "x": x}


@router.get("/compare")
def compare(request: Request, runs: list[str] = Query(default=[])) -> Response:
    ids = _ids(runs)
    try:
        _check_count(ids)
    except InvalidInput as e:  # shown in the page, with how to choose runs
        return page(request, "compare.html", 400, message=e.message, hint=e.hint or "",
                    runs=[])
    store = _store(request)
    found = _load(store, ids)  # NotFound names an unknown id: a 404 page
    labels = _labels(found)
    params, metrics = _diff(found, "params"), _diff(found, "metrics")
    metric_keys = [m.key for m in metrics]
    choice = _choices(request, params, metrics)
    rows = [Row(r.run_id, label, r.params, r.metrics) for r, label in
            zip(found, labels, strict=True)]
    query = urlencode([("runs", i) for i in ids])
    charts = [{"key": k, "src": f"{UI_PREFIX}/compare/metrics/{quote(k, safe='')}?{query}"}
              for k in metric_keys]
    parallel = parallel_coordinates(rows, choice["pc"], choice["metric"]) \
        if choice["pc"] or choice["metric"] else None
    points = scatter(rows, choice["x"], choice["metric"]) \
        if choice["x"] and choice["metric"] else None
    return page(request, "compare.html", message="", hint="", runs=found,
                chips=[(r, label, COLORS[i % len(COLORS)]) for i, (r, label) in
                       enumerate(zip(found, labels, strict=True))],
                labels=labels, params=params, metrics=metrics, charts=charts,
                choice=choice, parallel=parallel, scatter=points,
                differing=sum(d.differs for d in params + metrics),
                per_run=run_points(len(found)))


@router.get("/compare/metrics/{key:path}")
def compare_series(request: Request, key: str, runs: list[str] = Query(default=[]),
                   min_step: int | None = None, max_step: int | None = None) -> Response:
    """One series per run (in the order asked, runs without the metric too, so a run keeps
    its colour on every chart and zoom), each of at most :func:`run_points` points."""
    ids = _ids(runs)
    _check_count(ids)
    store = _store(request)
    found = _load(store, ids)
    budget = run_points(len(ids))
    return reply({"series": [series_json(store, r.run_id, key, label, budget, min_step,
                                         max_step)
                             for r, label in zip(found, _labels(found), strict=True)]})
