"""MLflow 3's logged models (``/logged-models``), each kept as a Forgeline run.

``mlflow.<flavor>.log_model`` creates a logged model, uploads its files to the model's
``artifact_uri`` and finalizes it. Forgeline has no separate kind of record for that, and
needs none: a logged model is a run in the same experiment, a child of the run that
produced it (``source_run_id``) when there is one, tagged ``forgeline.mlflow.logged_model``;
its files are that run's artifacts, its params the run's params, and its id ``m-<run id>``
(:mod:`forgeline.server.mlflow.views`). So ``forgeline runs list`` shows it under its
source run, and its files are downloaded and checked like any run's.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from forgeline.entities import RunStatus
from forgeline.errors import InvalidInput
from forgeline.server.mlflow.artifacts import list_files
from forgeline.server.mlflow.common import READ, WRITE, new_router, store_of
from forgeline.server.mlflow.errors import json, unsupported
from forgeline.server.mlflow.filters import LOGGED_MODEL_KEYS, translate_filter, translate_order_by
from forgeline.server.mlflow.messages import Message, message
from forgeline.server.mlflow.views import (
    LOGGED_MODEL_TAG,
    MODEL_TYPE_TAG,
    experiment_id,
    logged_model_json,
    logged_model_run,
)
from forgeline.util.time import now_ms

__all__ = ["router"]

router = new_router()
_FINAL = {"LOGGED_MODEL_READY": RunStatus.FINISHED, "LOGGED_MODEL_UPLOAD_FAILED": RunStatus.FAILED}
_MARKED = f"tags.`{LOGGED_MODEL_TAG}` = 'true'"


@router.post("/logged-models", dependencies=WRITE)
def create_logged_model(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    eid = experiment_id(store, msg.required("experiment_id"))
    source = msg.text("source_run_id")
    if source is not None and store.get_run(source).experiment_id != eid:
        raise InvalidInput(f"Run {source} is not in experiment {eid}: a logged model belongs "
                           "to the experiment of its source run.")
    tags = {**msg.pairs("tags"), LOGGED_MODEL_TAG: "true"}
    if msg.text("model_type"):
        tags[MODEL_TYPE_TAG] = msg.required("model_type")
    run = store.create_run(eid, msg.text("name") or "model", now_ms(), tags, source)
    params = msg.pairs("params")
    if params:
        store.log_batch(run.run_id, params=params)
        run = store.get_run(run.run_id)
    return json({"model": logged_model_json(run)})


@router.post("/logged-models/search", dependencies=READ)
def search_logged_models(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    if msg.values("datasets"):
        raise unsupported("Searching logged models by dataset")
    ids = [experiment_id(store, str(e)) for e in msg.values("experiment_ids")]
    if not ids:
        raise InvalidInput("Missing value for required parameter 'experiment_ids'.")
    given = translate_filter(msg.text("filter"), LOGGED_MODEL_KEYS)
    where = f"({given}) AND {_MARKED}" if given else _MARKED
    order = []
    for item in msg.values("order_by"):
        if not isinstance(item, dict) or not isinstance(item.get("field_name"), str):
            raise InvalidInput(f"Invalid order_by {item!r}: expected {{'field_name', "
                               "'ascending'}.")
        if item.get("dataset_name"):
            raise unsupported("Ordering logged models by a metric of a dataset")
        direction = "ASC" if item.get("ascending", True) else "DESC"
        order.append(f"{item['field_name']} {direction}")
    max_results = min(max(msg.integer("max_results", 100) or 100, 1), 10_000)
    page = store.search_runs(ids, where, translate_order_by(order, LOGGED_MODEL_KEYS) or None,
                             max_results, msg.text("page_token"))
    body: dict[str, Any] = {"models": [logged_model_json(r) for r in page]}
    if page.token:
        body["next_page_token"] = page.token
    return json(body)


@router.get("/logged-models/{model_id}", dependencies=READ)
def get_logged_model(request: Request, model_id: str) -> Any:
    return json({"model": logged_model_json(logged_model_run(store_of(request), model_id))})


@router.patch("/logged-models/{model_id}", dependencies=WRITE)
def finalize_logged_model(request: Request, model_id: str,
                          msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    run = logged_model_run(store, model_id)
    status = msg.required("status")
    if status not in _FINAL:
        raise InvalidInput(f"Invalid status {status!r} to finalize a logged model: expected "
                           "LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED.")
    run = store.set_run_status(run.run_id, _FINAL[status], now_ms())
    return json({"model": logged_model_json(run)})


@router.patch("/logged-models/{model_id}/tags", dependencies=WRITE)
def set_logged_model_tags(request: Request, model_id: str,
                          msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    tags = msg.pairs("tags")
    if LOGGED_MODEL_TAG in tags or MODEL_TYPE_TAG in tags:
        raise InvalidInput(f"Tags {LOGGED_MODEL_TAG!r} and {MODEL_TYPE_TAG!r} are "
                           "Forgeline's own.")
    store.log_batch(logged_model_run(store, model_id).run_id, tags=tags)
    return json({})


@router.post("/logged-models/{model_id}/params", dependencies=WRITE)
def log_logged_model_params(request: Request, model_id: str,
                            msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    store.log_batch(logged_model_run(store, model_id).run_id, params=msg.pairs("params"))
    return json({})


@router.get("/logged-models/{model_id}/artifacts/directories", dependencies=READ)
def list_logged_model_artifacts(request: Request, model_id: str,
                                msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    run = logged_model_run(store, model_id)
    path = msg.text("artifact_directory_path") or ""
    return json({"files": list_files(store, run.run_id, path, full_paths=True)})
