"""MLflow's tracking routes: experiments, runs, params, metrics, tags and run search.

Runs MLflow creates are Forgeline runs (see :mod:`forgeline.server.mlflow.views` for the
mapping). The MLflow client sends no heartbeats, so every write to a run counts as one
(at most one store write per run every :data:`HEARTBEAT_EVERY_MS`): a run that goes on
logging is never taken for a dead process by Forgeline's stale-run check.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from fastapi import Depends, Request

from forgeline.entities import Run, RunStatus
from forgeline.errors import InvalidInput, NotFound
from forgeline.server.mlflow.common import READ, WRITE, new_router, store_of
from forgeline.server.mlflow.errors import json, unsupported
from forgeline.server.mlflow.filters import match, translate_filter, translate_order_by
from forgeline.server.mlflow.messages import Message, message
from forgeline.server.mlflow.views import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    PARENT_TAG,
    RUN_NAME_TAG,
    USER_TAG,
    experiment_id,
    experiment_json,
    is_logged_model,
    logged_model_run,
    metric_json,
    run_info_json,
    run_json,
)
from forgeline.store.base import MetricPoint, Store
from forgeline.util.time import now_ms

__all__ = ["HEARTBEAT_EVERY_MS", "Heartbeats", "router"]

HEARTBEAT_EVERY_MS = 10_000
_MAX_RESULTS = 10_000  # the store's page limit; MLflow's client asks for at most this

router = new_router()


class Heartbeats:
    """When each run last had its heartbeat written by this server process."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def beat(self, store: Store, run_id: str) -> None:
        now = now_ms()
        with self._lock:
            if now - self._last.get(run_id, 0) < HEARTBEAT_EVERY_MS:
                return
            if len(self._last) > 100_000:
                self._last.clear()
            self._last[run_id] = now
        store.heartbeat([run_id], now)


def _wrote(request: Request, run_id: str) -> None:
    request.app.state.mlflow_heartbeats.beat(store_of(request), run_id)


def _status(value: str | None) -> RunStatus | None:
    if value is None:
        return None
    if value == "SCHEDULED":  # Forgeline has no queue: a scheduled run is a running one
        return RunStatus.RUNNING
    try:
        return RunStatus(value)
    except ValueError:
        raise InvalidInput(f"Invalid run status {value!r}: expected RUNNING, FINISHED, "
                           "FAILED or KILLED.") from None


def _point(msg: Message) -> MetricPoint:
    return (msg.required("key"), msg.number("value"), msg.integer("step", 0) or 0,
            msg.integer("timestamp") or now_ms())


def _messages(items: list[Any]) -> list[Message]:
    for item in items:
        if not isinstance(item, dict):
            raise InvalidInput(f"Invalid metric {item!r}: expected an object with key, value, "
                               "timestamp and step.")
    return [Message(item) for item in items]


def _run_points(store: Store, run_id: str, metrics: list[Message]) -> list[MetricPoint]:
    """The points to append to a run. MLflow 3 links points to a logged model by sending
    them again with its ``model_id`` (``log_model`` re-sends the run's points of its step):
    those go to the model's run, and to this run only if it does not have them already."""
    points: list[MetricPoint] = []
    linked: dict[str, list[MetricPoint]] = {}
    for msg in metrics:
        if msg.text("model_id"):
            linked.setdefault(msg.required("model_id"), []).append(_point(msg))
        else:
            points.append(_point(msg))
    for linked_id, linked_points in linked.items():
        store.log_metrics(logged_model_run(store, linked_id).run_id, linked_points)
        keys = {p[0] for p in linked_points}
        have = {(m.key, m.value, m.step, m.timestamp) for key in keys
                for m in store.get_metric_history(run_id, key)}
        points += [p for p in linked_points if p not in have]
    return points


def _check_special_tags(run: Run, tags: dict[str, str]) -> dict[str, str]:
    """Tags backed by a Forgeline field are read from it and cannot be changed by a tag."""
    if RUN_NAME_TAG in tags and tags.pop(RUN_NAME_TAG) != run.name:
        raise unsupported("Renaming a run (tag mlflow.runName)")
    if PARENT_TAG in tags and tags.pop(PARENT_TAG) != (run.parent_run_id or ""):
        raise unsupported("Changing a run's parent (tag mlflow.parentRunId)")
    return tags


def _log(request: Request, run_id: str, metrics: list[MetricPoint] | None = None,
         params: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> None:
    store = store_of(request)
    if tags and (RUN_NAME_TAG in tags or PARENT_TAG in tags):
        tags = _check_special_tags(store.get_run(run_id), dict(tags))
    store.log_batch(run_id, metrics or (), params, tags)
    _wrote(request, run_id)


# -- experiments --------------------------------------------------------------------------------
@router.get("/experiments/get-by-name", dependencies=READ)
def get_experiment_by_name(request: Request, msg: Message = Depends(message)) -> Any:
    name = msg.required("experiment_name")
    found = store_of(request).get_experiment_by_name(name)
    if found is None:
        raise NotFound(f"Could not find experiment with name '{name}'.")
    return json({"experiment": experiment_json(found)})


@router.get("/experiments/get", dependencies=READ)
def get_experiment(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    eid = experiment_id(store, msg.text("experiment_id"))
    return json({"experiment": experiment_json(store.get_experiment(eid))})


@router.post("/experiments/create", dependencies=WRITE)
def create_experiment(request: Request, msg: Message = Depends(message)) -> Any:
    if msg.text("artifact_location"):
        raise unsupported("An experiment's own artifact_location (artifacts go through the "
                          "server's artifact store)")
    experiment = store_of(request).create_experiment(msg.required("name"), msg.pairs("tags"))
    return json({"experiment_id": experiment.experiment_id})


@router.post("/experiments/search", dependencies=READ)
@router.get("/experiments/search", dependencies=READ)
def search_experiments(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    if msg.values("order_by"):
        raise unsupported("order_by in experiment search")
    if msg.text("view_type") == "DELETED_ONLY":  # Forgeline deletes no experiments
        return json({"experiments": []})
    store.get_or_create_experiment(DEFAULT_EXPERIMENT_NAME)  # MLflow's server always has it
    experiments = match(store.list_experiments(), msg.text("filter"), {"name": lambda e: e.name},
                        "experiments", lambda e: e.tags)
    limit = msg.integer("max_results", 1000) or 1000
    return json({"experiments": [experiment_json(e) for e in experiments[:limit]]})


# -- runs ---------------------------------------------------------------------------------------
@router.post("/runs/create", dependencies=WRITE)
def create_run(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    tags = msg.pairs("tags")
    eid = experiment_id(store, msg.text("experiment_id") or DEFAULT_EXPERIMENT_ID)
    name = msg.text("run_name") or tags.get(RUN_NAME_TAG) or f"run-{secrets.token_hex(3)}"
    tags.pop(RUN_NAME_TAG, None)
    parent = tags.pop(PARENT_TAG, None) or None
    user = msg.text("user_id")
    if user and USER_TAG not in tags:
        tags[USER_TAG] = user
    run = store.create_run(eid, name, msg.integer("start_time") or now_ms(), tags, parent)
    return json({"run": run_json(run)})


@router.get("/runs/get", dependencies=READ)
def get_run(request: Request, msg: Message = Depends(message)) -> Any:
    return json({"run": run_json(store_of(request).get_run(msg.run_id()))})


@router.post("/runs/update", dependencies=WRITE)
def update_run(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    run = store.get_run(msg.run_id())
    name = msg.text("run_name")
    if name is not None and name != run.name:
        raise unsupported("Renaming a run")
    status = _status(msg.text("status"))
    if status is not None:
        end_time = msg.integer("end_time")
        if status.is_terminal and end_time is None:
            end_time = now_ms()
        run = store.set_run_status(run.run_id, status, end_time)
    return json({"run_info": run_info_json(run)})


@router.post("/runs/log-metric", dependencies=WRITE)
def log_metric(request: Request, msg: Message = Depends(message)) -> Any:
    run_id = msg.run_id()
    _log(request, run_id, metrics=_run_points(store_of(request), run_id, [msg]))
    return json({})


@router.post("/runs/log-parameter", dependencies=WRITE)
def log_param(request: Request, msg: Message = Depends(message)) -> Any:
    _log(request, msg.run_id(), params={msg.required("key"): msg.text("value", "") or ""})
    return json({})


@router.post("/runs/set-tag", dependencies=WRITE)
def set_tag(request: Request, msg: Message = Depends(message)) -> Any:
    _log(request, msg.run_id(), tags={msg.required("key"): msg.text("value", "") or ""})
    return json({})


@router.post("/runs/log-batch", dependencies=WRITE)
def log_batch(request: Request, msg: Message = Depends(message)) -> Any:
    run_id = msg.run_id()
    _log(request, run_id, metrics=_run_points(store_of(request), run_id,
                                              _messages(msg.values("metrics"))),
         params=msg.pairs("params"), tags=msg.pairs("tags"))
    return json({})


@router.post("/runs/outputs", dependencies=WRITE)
def log_outputs(request: Request, msg: Message = Depends(message)) -> Any:
    # A logged model is already a child run of its source run; the step MLflow sends with
    # the link is not kept.
    store = store_of(request)
    store.get_run(msg.run_id())
    for item in msg.values("models"):
        logged_model_run(store, item.get("model_id") if isinstance(item, dict) else None)
    return json({})


@router.post("/runs/search", dependencies=READ)
def search_runs(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    if msg.text("run_view_type") == "DELETED_ONLY":  # Forgeline deletes no runs
        return json({"runs": []})
    ids = [experiment_id(store, str(e)) for e in msg.values("experiment_ids")]
    if not ids:
        raise InvalidInput("Missing value for required parameter 'experiment_ids'.")
    max_results = min(max(msg.integer("max_results", 1000) or 1000, 1), _MAX_RESULTS)
    page = store.search_runs(ids, translate_filter(msg.text("filter")),
                             translate_order_by(msg.values("order_by")) or None,
                             max_results, msg.text("page_token"))
    # Logged models are Forgeline runs too, but MLflow's search_runs does not list them.
    body: dict[str, Any] = {"runs": [run_json(r) for r in page if not is_logged_model(r)]}
    if page.token:
        body["next_page_token"] = page.token
    return json(body)


@router.get("/metrics/get-history", dependencies=READ)
def get_metric_history(request: Request, msg: Message = Depends(message)) -> Any:
    run_id = msg.run_id()
    points = store_of(request).get_metric_history(run_id, msg.required("metric_key"))
    return json({"metrics": [metric_json(p) for p in points]})
