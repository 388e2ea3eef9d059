"""MLflow's proxied artifact routes (``mlflow-artifacts``) over Forgeline's artifact store.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts``, so the
client sends ``PUT .../artifacts/<experiment>/<run>/artifacts/<path>`` with a file's bytes
and fetches them back with ``GET``. An upload is streamed to a temporary file, stored by
its sha256 in the content-addressed store and recorded as the run's file ``<path>``; a
download is checked against its sha256 and streamed from the store. Nothing is recorded
for an upload that does not arrive whole.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, Response

from forgeline.entities import Artifact, Run
from forgeline.errors import InvalidInput, NotFound
from forgeline.server.mlflow.common import READ, WRITE, artifacts_of, new_router, store_of
from forgeline.server.mlflow.errors import json
from forgeline.server.mlflow.messages import Message, message
from forgeline.server.mlflow.views import artifact_uri
from forgeline.store.artifacts import safe_artifact_path
from forgeline.store.base import Store

__all__ = ["list_files", "proxy_router", "router"]

proxy_router = new_router()  # under .../mlflow-artifacts
router = new_router()  # under .../mlflow (runs' artifact listing)
_CHUNK = 1 << 20


def _locate(store: Store, path: str) -> tuple[Run, str]:
    """The run and the path inside it that ``<experiment>/<run>/artifacts/<path>`` names."""
    parts = safe_artifact_path(path).split("/")
    if len(parts) < 3 or parts[2] != "artifacts":
        raise NotFound(f"No artifacts at {path!r}: Forgeline's artifact paths are "
                       "<experiment id>/<run id>/artifacts/<path>.")
    run = store.get_run(parts[1])
    if run.experiment_id != parts[0]:
        raise NotFound(f"Run {run.run_id} is not in experiment {parts[0]!r}.")
    return run, "/".join(parts[3:])


def list_files(store: Store, run_id: str, prefix: str, *, full_paths: bool
               ) -> list[dict[str, Any]]:
    """The files and folders directly under ``prefix`` in a run (none when it is a file),
    named by their path in the run or, without ``full_paths``, their base name."""
    prefix = safe_artifact_path(prefix) if prefix else ""
    entries: dict[str, dict[str, Any]] = {}
    for artifact in store.list_artifacts(run_id, prefix):
        if artifact.path == prefix:
            return []
        rest = artifact.path[len(prefix) + 1:] if prefix else artifact.path
        head, slash, _ = rest.partition("/")
        name = f"{prefix}/{head}" if prefix and full_paths else head
        if slash:
            entries.setdefault(name, {"path": name, "is_dir": True})
        else:
            entries[name] = {"path": name, "is_dir": False, "file_size": artifact.size}
    return list(entries.values())


@proxy_router.get("/artifacts", dependencies=READ)
def list_artifacts(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    path = msg.text("path") or ""
    try:
        run, rest = _locate(store, path)
    except NotFound:
        return json({"files": []})  # the root or an experiment: nothing to list one by one
    return json({"files": list_files(store, run.run_id, rest, full_paths=False)})


@proxy_router.get("/artifacts/{path:path}", dependencies=READ)
def download_artifact(request: Request, path: str) -> Any:
    store = store_of(request)
    artifacts = artifacts_of(request)
    run, rest = _locate(store, path)
    if not rest:
        raise NotFound(f"Run {run.run_id} has no artifact {rest!r}.")
    local = artifacts.get(store.get_artifact(run.run_id, rest).digest)  # sha256 checked
    media_type = mimetypes.guess_type(rest)[0] or "application/octet-stream"
    return FileResponse(local, media_type=media_type)


@proxy_router.put("/artifacts/{path:path}", dependencies=WRITE)
async def upload_artifact(request: Request, path: str) -> Response:
    store = store_of(request)
    artifacts = artifacts_of(request)
    run, rest = await run_in_threadpool(_locate, store, path)
    if not rest:
        raise InvalidInput(f"Upload to {path!r} names no file in the run.")
    fd, tmp_name = tempfile.mkstemp(prefix="forgeline-upload-")
    try:
        size = 0
        with os.fdopen(fd, "wb", buffering=_CHUNK) as out:
            async for chunk in request.stream():
                out.write(chunk)
                size += len(chunk)
        expected = request.headers.get("content-length")
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise InvalidInput(f"Upload of {rest!r} was cut short ({size} of {expected} "
                               "bytes); nothing was stored. Send it again.")
        digest = await run_in_threadpool(artifacts.put, Path(tmp_name))
        await run_in_threadpool(store.record_artifacts, run.run_id,
                                [Artifact(rest, digest, size)])
    except ClientDisconnect:
        raise InvalidInput(f"Upload of {rest!r} was interrupted; nothing was stored.") from None
    finally:
        os.unlink(tmp_name)
    return json({})


@router.get("/artifacts/list", dependencies=READ)
def list_run_artifacts(request: Request, msg: Message = Depends(message)) -> Any:
    store = store_of(request)
    run = store.get_run(msg.run_id())
    return json({"root_uri": artifact_uri(run),
                 "files": list_files(store, run.run_id, msg.text("path") or "",
                                     full_paths=True)})
