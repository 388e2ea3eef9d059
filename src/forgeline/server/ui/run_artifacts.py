"""A run's artifacts in the web UI: a listing per folder, a preview of one file
(:mod:`~forgeline.server.ui.preview`), and the file itself.

The file is read from ``app.state.artifacts`` by the digest the run recorded for its path;
the artifact store's ``get`` checks its sha256 before a byte goes out, as the REST API's
download does (:mod:`forgeline.server.api.artifacts`). A file is served with the type its
name gives, so an image shows in an ``<img>`` and a report in a frame, under a
``Content-Security-Policy: sandbox`` header: an HTML file someone logged runs in an origin
of its own, never with the UI's (its scripts cannot act as the signed-in user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, Response

from forgeline.entities import Artifact, Role
from forgeline.errors import ForgelineError
from forgeline.server.auth import require
from forgeline.server.ui.preview import Preview, kind_of, media_type, preview_file
from forgeline.server.ui.render import UI_PREFIX
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.base import Store
from forgeline.training.layout import REPORT_PATH

__all__ = ["Folder", "Listing", "browse", "file_url", "router"]

router = APIRouter(dependencies=[Depends(require(Role.READER))])
MAX_FILES = 1000  # files listed in one folder; the rest are counted


@dataclass(frozen=True, slots=True)
class Folder:
    name: str
    dir: str
    files: int
    size: int


@dataclass(slots=True)
class Listing:
    """One folder of a run's artifacts (``dir``; "" is the top) and the file previewed."""

    run_id: str
    dir: str
    total: int = 0
    folders: list[Folder] = field(default_factory=list)
    files: list[tuple[str, Artifact]] = field(default_factory=list)
    more_files: int = 0
    preview: Preview | None = None
    report_url: str | None = None

    @property
    def crumbs(self) -> list[tuple[str, str]]:
        """(name, dir) from the top to this folder."""
        parts = self.dir.split("/") if self.dir else []
        return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]

    def link(self, dir: str | None = None, preview: str = "") -> str:
        """The run page showing folder ``dir`` (this one by default) and ``preview``."""
        params = {k: v for k, v in {"dir": self.dir if dir is None else dir,
                                    "preview": preview}.items() if v}
        query = f"?{urlencode(params)}" if params else ""
        return f"{UI_PREFIX}/runs/{self.run_id}{query}#artifacts"

    def url(self, path: str, download: bool = False) -> str:
        return file_url(self.run_id, path, download)


def file_url(run_id: str, path: str, download: bool = False) -> str:
    """The URL of a run's file (``download``: saved under its name, not shown)."""
    return f"{UI_PREFIX}/runs/{run_id}/artifacts/{quote(path)}" + ("?download=1" if download
                                                                   else "")


def _folder(dir: str) -> str:
    return "/".join(p for p in dir.split("/") if p not in ("", ".", ".."))


def browse(store: Store, artifacts: ArtifactStore, run_id: str, dir: str = "",
           preview: str = "") -> Listing:
    """The listing of folder ``dir`` of a run's artifacts, with ``preview`` read."""
    listing = Listing(run_id, _folder(dir))
    everything = store.list_artifacts(run_id, listing.dir) if listing.dir else \
        store.list_artifacts(run_id)
    start = len(listing.dir) + 1 if listing.dir else 0
    folders: dict[str, list[Artifact]] = {}
    for a in everything:
        rest = a.path[start:]
        if "/" in rest:
            folders.setdefault(rest.split("/", 1)[0], []).append(a)
        elif len(listing.files) < MAX_FILES:
            listing.files.append((rest, a))
        else:
            listing.more_files += 1
    listing.total = len(everything)
    listing.folders = [Folder(n, f"{listing.dir}/{n}" if listing.dir else n, len(items),
                              sum(a.size for a in items)) for n, items in sorted(folders.items())]
    if store.list_artifacts(run_id, REPORT_PATH):
        listing.report_url = file_url(run_id, REPORT_PATH)
    if preview:
        listing.preview = _preview(store, artifacts, run_id, preview)
    return listing


def _preview(store: Store, artifacts: ArtifactStore, run_id: str, path: str) -> Preview:
    try:
        found = store.get_artifact(run_id, path)
        kind = kind_of(found.path)
        if kind in ("image", "html"):  # the browser loads the file itself, from file_url
            return Preview(kind, found.path)
        return preview_file(found.path, artifacts.get(found.digest))
    except ForgelineError as e:  # shown in the preview pane; the rest of the page stands
        return Preview("error", path, note=e.message)


@router.get("/runs/{run_id}/artifacts/{path:path}")
def artifact_file(request: Request, run_id: str, path: str, download: bool = False) -> Response:
    """The bytes of a run's file, sha256-checked, with the type its name gives."""
    found = request.app.state.store.get_artifact(run_id, path)
    artifacts: ArtifactStore = request.app.state.artifacts
    file = artifacts.get(found.digest)  # checks the sha256 before a byte goes out
    name = found.path.rsplit("/", 1)[-1]
    sandbox = "sandbox allow-scripts" if kind_of(found.path) == "html" else "sandbox"
    return FileResponse(
        file, media_type=media_type(found.path), filename=name,
        content_disposition_type="attachment" if download else "inline",
        headers={"ETag": f'"{found.digest}"', "X-Forgeline-Sha256": found.digest,
                 "Content-Security-Policy": sandbox, "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "private, max-age=3600"})


