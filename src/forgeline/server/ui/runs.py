"""The experiments page and the runs table of an experiment.

The runs table is one :meth:`~forgeline.store.base.Store.search_runs` call: Forgeline's
filter language (a mistake is shown under the box with its position), one sort key (a
click on a column header), the columns the user chose (``cols``: ``metrics.K``,
``params.K``, ``tags.K``), and pages by the store's page token. By default (``nested``)
the table lists top-level runs, each with its child runs folded under it (one more search
per page). The whole view lives in the URL, so a saved view is a bookmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from forgeline.entities import Role, Run
from forgeline.errors import InvalidInput
from forgeline.server.auth import require
from forgeline.server.ui.render import UI_PREFIX, error_position, page
from forgeline.store.base import Store
from forgeline.store.filter import parse_filter

__all__ = ["Column", "router"]

router = APIRouter(dependencies=[Depends(require(Role.READER))])
PAGE_SIZES = (25, 50, 100, 250, 500)
MAX_CHILDREN = 100  # child runs shown under a parent; the rest behind a link
DEFAULT_METRICS, DEFAULT_PARAMS = 6, 3
_KINDS = {"metrics": "metric", "params": "param", "tags": "tag"}


@dataclass(frozen=True, slots=True)
class Column:
    """A chosen column: ``metrics.auc`` -> kind ``metrics``, key ``auc``."""

    kind: str
    key: str

    @property
    def spec(self) -> str:
        return f"{self.kind}.{self.key}"

    @property
    def sort_key(self) -> str:
        return f"{self.kind}.`{self.key}`" if any(c in self.key for c in " .`-") \
            else self.spec

    def value(self, run: Run) -> Any:
        return getattr(run, self.kind).get(self.key)

    @classmethod
    def parse(cls, text: str) -> Column | None:
        kind, _, key = text.strip().partition(".")
        return cls(kind, key) if kind in _KINDS and key else None


def _store(request: Request) -> Store:
    return request.app.state.store


@router.get("/")
def experiments(request: Request) -> Response:
    found = sorted(_store(request).list_experiments(), key=lambda e: -e.creation_time)
    return page(request, "experiments.html", experiments=found)


def _keys(runs: list[Run]) -> dict[str, list[str]]:
    """The metric, param and tag keys of the runs on the page (the defaults and the column
    picker's first suggestions; the picker asks for every key of the experiment when it is
    first used: :func:`experiment_keys`)."""
    return {kind: sorted({k for r in runs for k in getattr(r, kind)}) for kind in _KINDS}


@router.get("/experiments/{experiment_id}/keys")
def experiment_keys(request: Request, experiment_id: str) -> Response:
    """Every metric, param and tag key of the experiment's runs, as the picker's list."""
    keys = _store(request).list_run_keys([experiment_id])
    return page(request, "keys.html", keys={"metrics": keys.metrics, "params": keys.params,
                                            "tags": keys.tags})


def _default_columns(keys: dict[str, list[str]]) -> list[Column]:
    tags = [Column("tags", k) for k in keys["tags"] if not k.startswith(("forgeline.",
                                                                         "mlflow."))]
    return ([Column("metrics", k) for k in keys["metrics"][:DEFAULT_METRICS]]
            + [Column("params", k) for k in keys["params"][:DEFAULT_PARAMS]] + tags[:1])


@router.get("/experiments/{experiment_id}")
def runs_table(request: Request, experiment_id: str, q: str = "", sort: str = "",
               cols: str | None = None, add: str = "", size: int = 50,
               page_token: str = "", nested: int = 1) -> Response:
    store = _store(request)
    experiment = store.get_experiment(experiment_id)
    size = size if size in PAGE_SIZES else 50
    error, position, runs, token, children = None, None, [], None, {}
    try:
        parse_filter(q)  # a mistake is shown at its position in what the user wrote
        search = (f"({q.strip()}) and parent_run_id IS NULL" if q.strip() else
                  "parent_run_id IS NULL") if nested else q.strip() or None
        order = [sort] if sort.strip() else None
        found = store.search_runs([experiment_id], filter=search, order_by=order,
                                  max_results=size, page_token=page_token or None)
        runs, token = list(found), found.token
        if nested:
            children = _children(store, experiment_id, runs, order)
    except InvalidInput as e:  # a mistake in the filter or the sort: shown in the page
        error, position = e.message, error_position(e)
    keys = _keys(runs)
    columns = ([c for c in (Column.parse(t) for t in cols.split(",")) if c is not None]
               if cols is not None else _default_columns(keys))
    extra = Column.parse(add)
    if extra is not None and extra not in columns:
        columns.append(extra)
    view = {"q": q, "sort": sort, "cols": ",".join(c.spec for c in columns), "size": size,
            "nested": nested}

    def link(**changes: Any) -> str:
        params = {k: v for k, v in {**view, **changes}.items() if v not in ("", None)}
        return f"{UI_PREFIX}/experiments/{experiment_id}?{urlencode(params)}"

    return page(request, "runs.html", experiment=experiment, runs=runs, columns=columns,
                keys=keys, view=view, error=error, position=position, link=link,
                next_token=token, first_page=not page_token, sizes=PAGE_SIZES,
                sort_link=lambda spec: _sort_link(link, sort, spec), children=children,
                max_children=MAX_CHILDREN)


def _children(store: Store, experiment_id: str, parents: list[Run],
              order: list[str] | None) -> dict[str, list[Run]]:
    """The child runs of ``parents`` (trials of a training run, ...), in the table's order:
    one search for the page, at most MAX_CHILDREN shown per parent."""
    if not parents:
        return {}
    ids = ", ".join(f"'{r.run_id}'" for r in parents)
    found: dict[str, list[Run]] = {}
    for run in store.search_runs([experiment_id], filter=f"parent_run_id IN ({ids})",
                                 order_by=order, max_results=10_000):
        found.setdefault(run.parent_run_id or "", []).append(run)
    return found


def _sort_link(link: Any, current: str, key: str) -> tuple[str, str]:
    """The link that sorts by ``key`` (descending first, then ascending) and the arrow
    shown on the column now."""
    field, _, direction = current.strip().rpartition(" ") if " " in current.strip() \
        else (current.strip(), "", "ASC")
    if field == key:
        flip = "ASC" if direction.upper() == "DESC" else "DESC"
        return link(sort=f"{key} {flip}", page_token=""), \
            "▼" if direction.upper() == "DESC" else "▲"
    return link(sort=f"{key} DESC", page_token=""), ""
