"""REST routes of the model registry: registered models, versions, tags, aliases, lineage.

Reads need the reader role; registering and tagging the writer role. Moving or deleting
an alias needs the writer role, or admin on a protected model (tagged
``forgeline.protected=true``); deleting a version, and protecting or unprotecting a
model, need admin.

Every alias change is recorded in the model's alias history with who made it: the name of
the request's token with auth on (a client cannot claim another's), else the ``actor`` the
client sent (Forgeline's client sends the local user).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from forgeline.entities import Role
from forgeline.registry.client import RegistryAPI
from forgeline.server.auth import PROTECTED_TAG, authorize, require, require_alias_role
from forgeline.server.http import json_body, reply
from forgeline.store.base import Store
from forgeline.store.http import wire
from forgeline.store.http.wire import READERS, optional, required

__all__ = ["router"]

router = APIRouter()
READ = [Depends(require(Role.READER))]
WRITE = [Depends(require(Role.WRITER))]
ADMIN = [Depends(require(Role.ADMIN))]
_str, _int, _str_dict, _str_list = (READERS[k] for k in ("str", "int", "str_dict", "str_list"))
_MODEL = "/registered-models/{name}"
_VERSION = _MODEL + "/versions/{version}"


def _store(request: Request) -> Store:
    return request.app.state.store


async def _actor(request: Request, claimed: str | None) -> str | None:
    """Who the alias history records: the token's name with auth on, else ``claimed``."""
    token = await authorize(request, Role.READER)  # the request's token, already checked
    return claimed if token is None else token.name


class _Registry(RegistryAPI):
    """The registry client's logic (lineage) over the server's store."""

    def __init__(self, store: Store) -> None:
        self.store = store


# -- registered models ----------------------------------------------------------------------
@router.get("/registered-models", dependencies=READ)
def list_registered_models(request: Request) -> Response:
    return reply({"registered_models": [wire.dump_registered_model(m)
                                        for m in _store(request).list_registered_models()]})


@router.post("/registered-models", dependencies=WRITE)
def create_registered_model(request: Request,
                            body: dict[str, Any] = Depends(json_body)) -> Response:
    model = _store(request).create_registered_model(
        required(body, "name", _str), optional(body, "description", _str, ""))
    return reply(wire.dump_registered_model(model))


@router.get(_MODEL, dependencies=READ)
def get_registered_model(request: Request, name: str) -> Response:
    return reply(wire.dump_registered_model(_store(request).get_registered_model(name)))


@router.put(_MODEL + "/tags/{key:path}", dependencies=WRITE)
async def set_registered_model_tag(request: Request, name: str, key: str,
                                   body: dict[str, Any] = Depends(json_body)) -> Response:
    """Tag a model; only an admin may set ``forgeline.protected``."""
    if key == PROTECTED_TAG:
        await authorize(request, Role.ADMIN, f"{PROTECTED_TAG} decides who may move aliases")
    value = required(body, "value", _str)
    await run_in_threadpool(_store(request).set_registered_model_tag, name, key, value)
    return reply({})


# -- versions -----------------------------------------------------------------------------------
@router.get("/model-versions", dependencies=READ)
def list_model_versions(request: Request, name: str | None = None) -> Response:
    """Versions of model ``name`` (of every model without it), newest first."""
    return reply({"model_versions": [wire.dump_model_version(v)
                                     for v in _store(request).list_model_versions(name)]})


@router.post(_MODEL + "/versions", dependencies=WRITE)
async def create_model_version(request: Request, name: str,
                               body: dict[str, Any] = Depends(json_body)) -> Response:
    """Register the next version; aliases set with it follow the alias rules."""
    aliases = optional(body, "aliases", _str_list, [])
    if aliases:
        await require_alias_role(request, name)
    store = _store(request)
    version = await run_in_threadpool(partial(
        store.create_model_version, name, optional(body, "run_id", _str),
        required(body, "artifact_path", _str), optional(body, "description", _str, ""),
        optional(body, "tags", _str_dict), aliases,
        actor=await _actor(request, optional(body, "actor", _str))))
    return reply(wire.dump_model_version(version))


@router.get(_VERSION, dependencies=READ)
def get_model_version(request: Request, name: str, version: int) -> Response:
    return reply(wire.dump_model_version(_store(request).get_model_version(name, version)))


@router.delete(_VERSION, dependencies=ADMIN)
def delete_model_version(request: Request, name: str, version: int) -> Response:
    _store(request).delete_model_version(name, version)
    return reply({})


@router.put(_VERSION + "/tags/{key:path}", dependencies=WRITE)
def set_model_version_tag(request: Request, name: str, version: int, key: str,
                          body: dict[str, Any] = Depends(json_body)) -> Response:
    _store(request).set_model_version_tag(name, version, key, required(body, "value", _str))
    return reply({})


@router.get(_VERSION + "/lineage", dependencies=READ)
def get_lineage(request: Request, name: str, version: int) -> Response:
    """The run, its ancestors, its datasets and its code version for a model version."""
    return reply(wire.dump_lineage(_Registry(_store(request)).get_lineage(f"{name}/{version}")))


# -- aliases ------------------------------------------------------------------------------------
@router.get(_MODEL + "/aliases/{alias}", dependencies=READ)
def get_alias(request: Request, name: str, alias: str) -> Response:
    return reply({"version": _store(request).get_alias(name, alias)})


@router.put(_MODEL + "/aliases/{alias}")
async def set_alias(request: Request, name: str, alias: str,
                    body: dict[str, Any] = Depends(json_body)) -> Response:
    """Point an alias at a version: ``{"version": 3}`` (and ``"actor"``, used with auth
    off); answers where it pointed before."""
    await require_alias_role(request, name)
    version = required(body, "version", _int)
    actor = await _actor(request, optional(body, "actor", _str))
    previous = await run_in_threadpool(partial(_store(request).set_alias, name, alias, version,
                                               actor=actor))
    return reply({"previous": previous})


@router.delete(_MODEL + "/aliases/{alias}")
async def delete_alias(request: Request, name: str, alias: str,
                       actor: str | None = None) -> Response:
    """Remove an alias; ``?actor=`` names who did it when auth is off."""
    await require_alias_role(request, name)
    actor = await _actor(request, actor)
    version = await run_in_threadpool(partial(_store(request).delete_alias, name, alias,
                                              actor=actor))
    return reply({"version": version})


@router.get(_MODEL + "/alias-history", dependencies=READ)
def get_alias_history(request: Request, name: str, alias: str | None = None,
                      max_results: int = 100) -> Response:
    """The changes of the model's aliases (of ``alias`` only, when given), newest first."""
    found = _store(request).get_alias_history(name, alias, max_results)
    return reply({"events": [wire.dump_alias_event(e) for e in found]})
