"""The registered models and a model's page: versions, aliases and who moved them, the
lineage and the model card of a version, and moving an alias.

Moving an alias takes two posts to ``/models/{name}/aliases``: the form (alias, version)
answers a confirmation page ("Move champion from v2 to v3?") that echoes where the alias
points now; the confirmation moves it only if it still points there, so a confirmation
made stale by someone else's move is refused and asked again, never applied. Both posts
check the same role as the REST API (:func:`~forgeline.server.auth.require_alias_role`:
writer, admin on a protected model); the move is recorded with the signed-in token's name.
The session cookie is SameSite=Strict, so another site cannot make a browser post here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, partial
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from forgeline.entities import AliasEvent, ModelVersion, Role, Run
from forgeline.errors import Forbidden, ForgelineError, InvalidInput, NotFound
from forgeline.names import check_alias
from forgeline.registry.client import RegistryAPI
from forgeline.server.auth import PROTECTED_TAG, require, require_alias_role, token_of
from forgeline.server.ui.lineage import layout
from forgeline.server.ui.render import UI_PREFIX, page
from forgeline.store.base import Store

__all__ = ["render_markdown", "router"]

router = APIRouter(dependencies=[Depends(require(Role.READER))])
MAX_CARD_BYTES = 512 * 1024
MAX_METRIC_COLUMNS = 4


def _store(request: Request) -> Store:
    return request.app.state.store


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # html off: raw HTML in a card is shown as text; images off: a card fetches nothing
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")


def render_markdown(text: str) -> str:
    """Markdown as safe HTML: raw HTML escaped, unsafe link schemes dropped, no images."""
    return _markdown().render(text)


@router.get("/models")
def models(request: Request) -> Response:
    found = sorted(_store(request).list_registered_models(),
                   key=lambda m: -m.last_updated_time)
    return page(request, "models.html", models=found)


@dataclass(frozen=True, slots=True)
class VersionRow:
    version: ModelVersion
    run: Run | None


class _Registry(RegistryAPI):
    """The registry client's lineage over the server's store."""

    def __init__(self, store: Store) -> None:
        self.store = store


def _metric_columns(runs: list[Run]) -> list[str]:
    """The primary metric's test and CV scores first, then the other test metrics."""
    keys = {k for r in runs for k in r.metrics}
    primary = [f"{p}_{r.params['metric']}" for r in runs if "metric" in r.params
               for p in ("test", "cv")]
    rest = sorted(k for k in keys if k.startswith("test_") and not k.startswith("test_newest"))
    ordered = list(dict.fromkeys([*primary, *rest, *sorted(keys)]))
    return [k for k in ordered if k in keys][:MAX_METRIC_COLUMNS]


def _card(request: Request, mv: ModelVersion) -> tuple[str | None, str | None]:
    """The version's model card as HTML, or why there is none."""
    from forgeline.packaging.package import CARD_FILE  # pandas: only when a card is shown

    if mv.run_id is None:
        return None, "This version was registered without a run, so it has no package files."
    path = f"{mv.artifact_path.rstrip('/')}/{CARD_FILE}"
    try:
        found = [a for a in _store(request).list_artifacts(mv.run_id, mv.artifact_path)
                 if a.path == path]
        if not found:
            return None, f"The package has no {CARD_FILE}."
        if found[0].size > MAX_CARD_BYTES:
            return None, f"The card is {found[0].size:,} bytes; too large to show here."
        text = request.app.state.artifacts.get(found[0].digest).read_text("utf-8", "replace")
    except ForgelineError as e:
        return None, f"The card could not be read: {e.message}"
    return render_markdown(text), None


def _last_moves(history: list[AliasEvent]) -> dict[str, AliasEvent]:
    last: dict[str, AliasEvent] = {}
    for event in history:  # newest first
        last.setdefault(event.alias, event)
    return last


@router.get("/models/{name}")
def model(request: Request, name: str, version: int | None = None) -> Response:
    store = _store(request)
    registered = store.get_registered_model(name)
    versions = store.list_model_versions(name)
    rows = []
    for mv in versions:
        try:
            run = store.get_run(mv.run_id) if mv.run_id else None
        except NotFound:
            run = None
        rows.append(VersionRow(mv, run))
    history = store.get_alias_history(name, max_results=100)
    chosen = (version if version is not None else registered.aliases.get("champion")
              or registered.latest_version)
    selected = lineage = graph = card = card_note = None
    if chosen is not None:
        selected = store.get_model_version(name, chosen)
        lineage = _Registry(store).get_lineage(selected.ref)
        graph = layout(lineage)
        card, card_note = _card(request, selected)
    return page(request, "model.html", model=registered, rows=rows,
                metric_columns=_metric_columns([r.run for r in rows if r.run]),
                history=history, last_moves=_last_moves(history), selected=selected,
                lineage=lineage, graph=graph, card=card, card_note=card_note,
                protected=registered.tags.get(PROTECTED_TAG, "").lower() == "true")


def _field(form: dict[str, list[str]], key: str) -> str:
    return (form.get(key) or [""])[0].strip()


def _current(store: Store, name: str, alias: str) -> int | None:
    try:
        return store.get_alias(name, alias)
    except NotFound:
        return None


@router.get("/models/{name}/aliases")
def aliases_form(name: str) -> Response:
    """Where a sign-in after a refused post lands: back on the model's page."""
    return RedirectResponse(f"{UI_PREFIX}/models/{quote(name)}#aliases", 303)


@router.post("/models/{name}/aliases")
async def move_alias(request: Request, name: str) -> Response:
    """The form's post answers the confirmation; the confirmation's post moves the alias."""
    store = _store(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    await run_in_threadpool(store.get_registered_model, name)  # NotFound: a 404 page
    alias, target = _field(form, "alias"), _field(form, "version")
    state: dict[str, Any] = {"name": name, "alias": alias, "target": target, "stale": None}
    try:
        await require_alias_role(request, name)
    except Forbidden as e:  # a readable refusal on the model's terms; nothing changes
        return page(request, "alias_move.html", 403, step="refused", message=e.message,
                    hint=e.hint or "", **state)
    try:
        check_alias(alias)
        if not target.isdigit():
            raise InvalidInput(f"Choose the version {alias!r} should point at.")
        version = int(target)
        await run_in_threadpool(store.get_model_version, name, version)
    except (InvalidInput, NotFound) as e:
        return page(request, "alias_move.html", 400, step="invalid", message=e.message,
                    hint="", **state)
    current = await run_in_threadpool(_current, store, name, alias)
    if _field(form, "step") != "confirm":
        return page(request, "alias_move.html", step="confirm", current=current, **state)
    echoed = _field(form, "current")
    if echoed != ("" if current is None else str(current)):
        # Moved by someone else since the confirmation was shown: ask again, apply nothing.
        return page(request, "alias_move.html", 409, step="confirm", current=current,
                    **{**state, "stale": echoed or "unset"})
    token = await token_of(request)
    await run_in_threadpool(partial(store.set_alias, name, alias, version,
                                    actor=None if token is None else token.name))
    return RedirectResponse(f"{UI_PREFIX}/models/{quote(name)}?moved={quote(alias)}"
                            f"#aliases", 303)
