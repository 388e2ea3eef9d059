"""REST routes of experiments, runs, metrics, params, tags, datasets and artifact records.

Each route is one Store call on ``app.state.store``, run in the thread pool (the store
blocks); bodies are read with :mod:`forgeline.store.http.wire`, which names a malformed
field. Reads need the reader role, writes the writer role.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from forgeline.entities import Role, RunStatus
from forgeline.errors import InvalidInput
from forgeline.server.auth import require
from forgeline.server.http import json_body, reply
from forgeline.store.artifacts import safe_artifact_path
from forgeline.store.base import Store
from forgeline.store.http import wire
from forgeline.store.http.wire import READERS, optional, required

__all__ = ["router"]

router = APIRouter()
READ = [Depends(require(Role.READER))]
WRITE = [Depends(require(Role.WRITER))]
_str, _int, _str_dict, _str_list = (READERS[k] for k in ("str", "int", "str_dict", "str_list"))


def _store(request: Request) -> Store:
    return request.app.state.store


# -- experiments ----------------------------------------------------------------------------
@router.get("/experiments", dependencies=READ)
def list_experiments(request: Request, name: str | None = None) -> Response:
    """Every experiment, or the one named ``name`` (an empty list when there is none)."""
    store = _store(request)
    if name is None:
        found = store.list_experiments()
    else:
        one = store.get_experiment_by_name(name)
        found = [one] if one is not None else []
    return reply({"experiments": [wire.dump_experiment(e) for e in found]})


@router.post("/experiments", dependencies=WRITE)
def create_experiment(request: Request, body: dict[str, Any] = Depends(json_body)) -> Response:
    experiment = _store(request).create_experiment(
        required(body, "name", _str), optional(body, "tags", _str_dict))
    return reply(wire.dump_experiment(experiment))


@router.get("/experiments/{experiment_id}", dependencies=READ)
def get_experiment(request: Request, experiment_id: str) -> Response:
    return reply(wire.dump_experiment(_store(request).get_experiment(experiment_id)))


# -- runs -------------------------------------------------------------------------------------
@router.post("/runs", dependencies=WRITE)
def create_run(request: Request, body: dict[str, Any] = Depends(json_body)) -> Response:
    run = _store(request).create_run(
        required(body, "experiment_id", _str), required(body, "name", _str),
        required(body, "start_time", _int), optional(body, "tags", _str_dict),
        optional(body, "parent_run_id", _str))
    return reply(wire.dump_run(run))


@router.post("/runs/search", dependencies=READ)
def search_runs(request: Request, body: dict[str, Any] = Depends(json_body)) -> Response:
    page = _store(request).search_runs(
        required(body, "experiment_ids", _str_list), optional(body, "filter", _str),
        optional(body, "order_by", _str_list), optional(body, "max_results", _int, 1000),
        optional(body, "page_token", _str))
    return reply({"runs": [wire.dump_run(r) for r in page], "next_page_token": page.token})


@router.post("/runs/heartbeat", dependencies=WRITE)
def heartbeat(request: Request, body: dict[str, Any] = Depends(json_body)) -> Response:
    _store(request).heartbeat(required(body, "run_ids", _str_list), required(body, "now", _int))
    return reply({})


@router.post("/runs/mark-stale", dependencies=WRITE)
def mark_stale_runs(request: Request, body: dict[str, Any] = Depends(json_body)) -> Response:
    return reply({"run_ids": _store(request).mark_stale_runs(
        required(body, "older_than", _int))})


@router.get("/runs/{run_id}", dependencies=READ)
def get_run(request: Request, run_id: str) -> Response:
    return reply(wire.dump_run(_store(request).get_run(run_id)))


@router.patch("/runs/{run_id}", dependencies=WRITE)
def set_run_status(request: Request, run_id: str,
                   body: dict[str, Any] = Depends(json_body)) -> Response:
    """Set the status (and end time) of a run: ``{"status": "FINISHED", "end_time": ms}``."""
    status = required(body, "status", _str)
    if status not in RunStatus.__members__:
        raise InvalidInput(f"Invalid field 'status': {status!r} is not a run status.",
                           hint=f"Use one of {', '.join(RunStatus.__members__)}.")
    run = _store(request).set_run_status(run_id, RunStatus(status),
                                         optional(body, "end_time", _int))
    return reply(wire.dump_run(run))


@router.post("/runs/{run_id}/batch", dependencies=WRITE)
def log_batch(request: Request, run_id: str,
              body: dict[str, Any] = Depends(json_body)) -> Response:
    """Metric points (``[[key, value, step, timestamp], ...]``), params and tags, at once."""
    _store(request).log_batch(
        run_id, optional(body, "metrics", wire.load_metric_points, ()),
        optional(body, "params", _str_dict), optional(body, "tags", _str_dict))
    return reply({})


@router.get("/runs/{run_id}/metric-history", dependencies=READ)
def get_metric_history(request: Request, run_id: str, key: str) -> Response:
    """Every point of metric ``key`` as ``[value, step, timestamp]``, by step."""
    history = _store(request).get_metric_history(run_id, key)
    return reply({"key": key, "points": wire.dump_metrics(history)})


@router.get("/runs/{run_id}/metric-series", dependencies=READ)
def get_metric_series(request: Request, run_id: str, key: str, max_points: int = 2000,
                      min_step: int | None = None, max_step: int | None = None) -> Response:
    """Metric ``key`` for a chart: the points of steps in [min_step, max_step], exact up to
    ``max_points``, else downsampled to at most that many (Store.get_metric_series)."""
    series = _store(request).get_metric_series(run_id, key, max_points, min_step, max_step)
    return reply(wire.dump_metric_series(series))


@router.get("/run-keys", dependencies=READ)
def list_run_keys(request: Request,
                  experiment_ids: list[str] = Query(default_factory=list)) -> Response:
    """The distinct metric, param and tag keys of the runs of these experiments."""
    return reply(wire.dump_run_keys(_store(request).list_run_keys(experiment_ids)))


# -- artifact records and datasets ----------------------------------------------------------------
@router.post("/runs/{run_id}/artifacts", dependencies=WRITE)
def record_artifacts(request: Request, run_id: str,
                     body: dict[str, Any] = Depends(json_body)) -> Response:
    """Record files a run logged (their bytes are uploaded by digest to /artifacts)."""
    items = required(body, "artifacts", READERS["list"])  # checked one by one below
    artifacts = [wire.load_artifact(a, f"artifacts[{i}]") for i, a in enumerate(items)]
    for a in artifacts:
        safe_artifact_path(a.path)
    _store(request).record_artifacts(run_id, artifacts)
    return reply({})


@router.get("/runs/{run_id}/artifacts", dependencies=READ)
def list_artifacts(request: Request, run_id: str, prefix: str = "") -> Response:
    found = _store(request).list_artifacts(run_id, safe_artifact_path(prefix) if prefix else "")
    return reply({"artifacts": [wire.dump_artifact(a) for a in found]})


@router.post("/runs/{run_id}/datasets", dependencies=WRITE)
def log_dataset(request: Request, run_id: str,
                body: dict[str, Any] = Depends(json_body)) -> Response:
    _store(request).log_dataset(run_id, required(body, "dataset", wire.load_dataset),
                                required(body, "context", _str))
    return reply({})


@router.get("/runs/{run_id}/datasets", dependencies=READ)
def get_run_datasets(request: Request, run_id: str) -> Response:
    found = _store(request).get_run_datasets(run_id)
    return reply({"datasets": [{"dataset": wire.dump_dataset(d), "context": c}
                               for d, c in found]})
