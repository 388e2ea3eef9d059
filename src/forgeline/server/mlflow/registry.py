"""MLflow's model registry routes over Forgeline's registry: models, versions, aliases.

A version MLflow registers keeps the source it was given (``models:/m-...`` for an
MLflow 3 logged model, ``runs:/<run>/<path>`` or ``mlflow-artifacts:/...``) as its
artifact path, and its ``run_id`` is the run that produced the model (a logged model's
source run). A version Forgeline registered (a run and a path in it) is shown with a
``runs:/`` source. Either way ``get-download-uri`` answers an ``mlflow-artifacts:/`` URI,
so the client loads the files through the server. MLflow's stages are not kept (every
version is in stage ``None``); aliases are Forgeline's aliases.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from forgeline.entities import ModelVersion, Role
from forgeline.errors import InvalidInput, NotFound
from forgeline.names import check_key
from forgeline.server.auth import PROTECTED_TAG, authorize, require_alias_role
from forgeline.server.mlflow.common import ADMIN, READ, WRITE, new_router, store_of
from forgeline.server.mlflow.errors import json
from forgeline.server.mlflow.filters import match
from forgeline.server.mlflow.messages import Message, message
from forgeline.server.mlflow.views import (
    artifact_uri,
    logged_model_run,
    model_version_json,
    registered_model_json,
)
from forgeline.store.artifacts import safe_artifact_path
from forgeline.store.base import Store

__all__ = ["download_uri", "router"]

router = new_router()
_MODELS = "models:/"
_RUNS = "runs:/"
_PROXIED = "mlflow-artifacts:/"


def _version(msg: Message) -> int:
    version = msg.integer("version")
    if version is None:
        raise InvalidInput("Missing value for required parameter 'version'.")
    return version


def _source_run(store: Store, source: str) -> str | None:
    """The run that produced the model a registration's source names, if it names one."""
    if source.startswith(_MODELS):
        model = logged_model_run(store, source[len(_MODELS):])
        return model.parent_run_id or model.run_id
    if source.startswith(_RUNS):
        return source[len(_RUNS):].partition("/")[0] or None
    if source.startswith(_PROXIED):
        parts = source[len(_PROXIED):].strip("/").split("/")
        return parts[1] if len(parts) >= 3 and parts[2] == "artifacts" else None
    return None


def download_uri(store: Store, version: ModelVersion) -> str:
    """Where the client fetches a version's files: an ``mlflow-artifacts:/`` URI."""
    path = version.artifact_path
    if path.startswith(_MODELS):
        return artifact_uri(logged_model_run(store, path[len(_MODELS):]))
    if path.startswith(_RUNS):
        run_id, _, inside = path[len(_RUNS):].partition("/")
        root = artifact_uri(store.get_run(run_id))
        return f"{root}/{safe_artifact_path(inside)}" if inside.strip("/") else root
    if ":/" in path:
        return path
    if version.run_id is None:
        raise NotFound(f"Model version {version.ref} has no run to fetch its files from.")
    return f"{artifact_uri(store.get_run(version.run_id))}/{path}"


# -- registered models -------------------------------------------------------------------------
@router.post("/registered-models/create", dependencies=WRITE)
async def create_registered_model(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    name = msg.required("name")
    tags = msg.pairs("tags")
    if PROTECTED_TAG in tags:
        await authorize(request, Role.ADMIN, f"tag {PROTECTED_TAG} protects a model")
    for key in tags:
        check_key(key, "tag key")  # before the model exists: nothing stored half-way

    def create() -> Any:
        store.create_registered_model(name, msg.text("description", "") or "")
        for key, value in tags.items():
            store.set_registered_model_tag(name, key, value)
        return registered_model_json(store.get_registered_model(name))

    return json({"registered_model": await run_in_threadpool(create)})


@router.get("/registered-models/get", dependencies=READ)
def get_registered_model(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    model = store.get_registered_model(msg.required("name"))
    latest = (store.get_model_version(model.name, model.latest_version)
              if model.latest_version is not None else None)
    return json({"registered_model": registered_model_json(model, latest)})


@router.get("/registered-models/search", dependencies=READ)
def search_registered_models(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    models = match(store.list_registered_models(), msg.text("filter"),
                   {"name": lambda m: m.name}, "registered models", lambda m: m.tags)
    latest: dict[str, ModelVersion] = {}
    for version in store.list_model_versions():  # newest first
        latest.setdefault(version.name, version)
    limit = msg.integer("max_results", 100) or 100
    return json({"registered_models": [registered_model_json(m, latest.get(m.name))
                                       for m in models[:limit]]})


@router.post("/registered-models/get-latest-versions", dependencies=READ)
@router.get("/registered-models/get-latest-versions", dependencies=READ)
def get_latest_versions(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    model = store.get_registered_model(msg.required("name"))
    stages = [str(s).lower() for s in msg.values("stages")]
    if model.latest_version is None or (stages and "none" not in stages):
        return json({"model_versions": []})  # every version is in stage None
    version = store.get_model_version(model.name, model.latest_version)
    return json({"model_versions": [model_version_json(version)]})


@router.post("/registered-models/set-tag", dependencies=WRITE)
async def set_registered_model_tag(request: Request, msg: Message = Depends(message)) -> Any:
    key = msg.required("key")
    if key == PROTECTED_TAG:
        await authorize(request, Role.ADMIN, f"tag {PROTECTED_TAG} protects a model")
    await run_in_threadpool(store_of(request).set_registered_model_tag, msg.required("name"),
                            key, msg.text("value", "") or "")
    return json({})


# -- aliases ------------------------------------------------------------------------------------
async def _actor(request: Request) -> str | None:
    """Who the alias history records: the token's name (nobody with auth off: MLflow's
    client names no user)."""
    token = await authorize(request, Role.READER)  # the request's token, already checked
    return None if token is None else token.name


@router.post("/registered-models/alias")
async def set_alias(request: Request, msg: Message = Depends(message)) -> Any:
    name = msg.required("name")
    await require_alias_role(request, name)
    await run_in_threadpool(partial(store_of(request).set_alias, name, msg.required("alias"),
                                    _version(msg), actor=await _actor(request)))
    return json({})


@router.delete("/registered-models/alias")
async def delete_alias(request: Request, msg: Message = Depends(message)) -> Any:
    name = msg.required("name")
    await require_alias_role(request, name)
    await run_in_threadpool(partial(store_of(request).delete_alias, name,
                                    msg.required("alias"), actor=await _actor(request)))
    return json({})


@router.get("/registered-models/alias", dependencies=READ)
def get_model_version_by_alias(request: Request, msg: Message = Depends(message)) -> Any:
    version = store_of(request).resolve_model_version(
        f"{msg.required('name')}@{msg.required('alias')}")
    return json({"model_version": model_version_json(version)})


# -- versions -----------------------------------------------------------------------------------
@router.post("/model-versions/create", dependencies=WRITE)
def create_model_version(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    source = msg.required("source")
    model_id = msg.text("model_id")
    if model_id is not None and not source.startswith(_MODELS):
        logged_model_run(store, model_id)  # the model must exist even if the source is a path
    run_id = msg.text("run_id") or _source_run(store, source)
    version = store.create_model_version(msg.required("name"), run_id, source,
                                         msg.text("description", "") or "", msg.pairs("tags"))
    return json({"model_version": model_version_json(version)})


@router.get("/model-versions/get", dependencies=READ)
def get_model_version(request: Request, msg: Message = Depends(message)) -> Any:
    version = store_of(request).get_model_version(msg.required("name"), _version(msg))
    return json({"model_version": model_version_json(version)})


@router.get("/model-versions/search", dependencies=READ)
def search_model_versions(request: Request, msg: Message = Depends(message)) -> Any:
    versions = match(store_of(request).list_model_versions(), msg.text("filter"),
                     {"name": lambda v: v.name, "run_id": lambda v: v.run_id},
                     "model versions", lambda v: v.tags)
    limit = msg.integer("max_results", 10_000) or 10_000
    return json({"model_versions": [model_version_json(v) for v in versions[:limit]]})


@router.get("/model-versions/get-download-uri", dependencies=READ)
def get_model_version_download_uri(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    version = store.get_model_version(msg.required("name"), _version(msg))
    return json({"artifact_uri": download_uri(store, version)})


@router.post("/model-versions/set-tag", dependencies=WRITE)
def set_model_version_tag(request: Request, msg: Message = Depends(message)) -> Any:
    store_of(request).set_model_version_tag(msg.required("name"), _version(msg),
                                          msg.required("key"), msg.text("value", "") or "")
    return json({})


@router.delete("/model-versions/delete", dependencies=ADMIN)
def delete_model_version(request: Request, msg: Message = Depends(message)) -> Any:
    store_of(request).delete_model_version(msg.required("name"), _version(msg))
    return json({})
