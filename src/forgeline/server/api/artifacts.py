"""REST routes of artifact bytes, addressed by their sha256, streamed both ways.

``PUT /artifacts/<sha256>`` streams the body into the artifact store through an
:class:`~forgeline.store.artifacts.Upload`, hashing it on the way: it is stored only when
the bytes hash to the digest in the URL (and, when Content-Length was sent, are that
long), so a truncated or corrupted upload stores nothing. ``GET`` streams the file after
checking its sha256 (the artifact store's ``get``); ``HEAD`` says whether it is there.
``GET /runs/<id>/artifacts/<path>`` fetches a file by its path in the run.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, Response

from forgeline.entities import Role
from forgeline.errors import InvalidInput
from forgeline.server.auth import require
from forgeline.server.http import reply
from forgeline.store.artifacts import ArtifactStore, check_digest
from forgeline.store.base import Store

__all__ = ["UPLOAD_ROUTE", "router"]

router = APIRouter()
READ = [Depends(require(Role.READER))]
WRITE = [Depends(require(Role.WRITER))]
UPLOAD_ROUTE = "/artifacts/"  # PUT under it: the upload size limit, not the JSON one


def _artifacts(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


def _file(artifacts: ArtifactStore, digest: str) -> Response:
    path = artifacts.get(digest)  # checks the sha256 before a byte goes out
    return FileResponse(path, media_type="application/octet-stream",
                        headers={"ETag": f'"{digest}"', "X-Forgeline-Sha256": digest})


@router.put("/artifacts/{digest}", dependencies=WRITE, status_code=201)
async def upload(request: Request, digest: str) -> Response:
    """Store the body under its sha256, which must be ``digest``."""
    check_digest(digest)
    declared = request.headers.get("content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    artifacts = _artifacts(request)
    with artifacts.upload() as staged:
        try:
            async for chunk in request.stream():
                staged.write(chunk)
        except ClientDisconnect:
            raise InvalidInput("The upload was interrupted: the client went away. Nothing "
                               "was stored.", hint="Send the file again.") from None
        await run_in_threadpool(staged.commit, digest, size)
    return reply({"digest": digest, "size": staged.size}, 201)


@router.head("/artifacts/{digest}", dependencies=READ)
def exists(request: Request, digest: str) -> Response:
    if not _artifacts(request).exists(check_digest(digest)):
        return Response(status_code=404)
    return Response(status_code=200, headers={"ETag": f'"{digest}"'})


@router.get("/artifacts/{digest}", dependencies=READ)
def download(request: Request, digest: str) -> Response:
    return _file(_artifacts(request), check_digest(digest))


@router.get("/artifacts", dependencies=READ)
def list_digests(request: Request) -> Response:
    """Every digest in the artifact store."""
    return reply({"digests": list(_artifacts(request).list())})


@router.get("/runs/{run_id}/artifacts/{path:path}", dependencies=READ)
def download_by_path(request: Request, run_id: str, path: str) -> Response:
    """A file a run logged, by its path in the run (``model/model.skops``)."""
    store: Store = request.app.state.store
    return _file(_artifacts(request), store.get_artifact(run_id, path).digest)
