"""Compile the search language (:mod:`forgeline.store.filter`) into SQL over the runs table.

Each comparison on a metric, param or tag becomes ``run_id IN (subquery)`` served by an
index on (key, value); sorting on a metric or param is an outer join, missing values last.
Pages are keyset pages: the token carries the last row's sort-key values (:mod:`.keyset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeline.entities import RunKeys
from forgeline.store.filter import (
    And,
    Comparison,
    Node,
    Or,
    OrderBy,
    parse_filter,
    parse_order_by,
)
from forgeline.store.sql import tables as t
from forgeline.store.sql.keyset import SortKey, after, decode_token, encode_token

_OPS = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<": lambda c, v: c < v,
    "<=": lambda c, v: c <= v,
    ">": lambda c, v: c > v,
    ">=": lambda c, v: c >= v,
    "LIKE": lambda c, v: c.like(v),
    "NOT LIKE": lambda c, v: c.not_like(v),
    "ILIKE": lambda c, v: sa.func.lower(c).like(sa.func.lower(v)),
    "NOT ILIKE": lambda c, v: sa.func.lower(c).not_like(sa.func.lower(v)),
    "IN": lambda c, v: c.in_(list(v)),
    "NOT IN": lambda c, v: c.not_in(list(v)),
}


def _compare(column: Any, op: str, value: Any) -> sa.ColumnElement[bool]:
    return _OPS[op](column, value)


def _textual(value: Any) -> Any:
    """Numbers written without quotes compare as their usual text: 6 -> '6', 0.5 -> '0.5'."""
    if isinstance(value, tuple):
        return tuple(_textual(v) for v in value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def _condition(node: Node) -> sa.ColumnElement[bool]:
    if isinstance(node, And):
        return sa.and_(*(_condition(n) for n in node.items))
    if isinstance(node, Or):
        return sa.or_(*(_condition(n) for n in node.items))
    return _comparison(node)


def _comparison(c: Comparison) -> sa.ColumnElement[bool]:
    run_id = t.runs.c.run_id
    if c.op in ("IS NULL", "IS NOT NULL"):
        return _presence(c, c.op == "IS NOT NULL")
    numeric = not isinstance(c.value, str) and all(
        isinstance(v, float) for v in (c.value if isinstance(c.value, tuple) else (c.value,)))
    if c.kind == "metric":
        lm = t.latest_metrics.c
        return run_id.in_(sa.select(lm.run_id).where(lm.key == c.key,
                                                     _compare(lm.value, c.op, c.value)))
    if c.kind == "param":
        p = t.params.c
        column, value = (p.num_value, c.value) if numeric and c.op not in ("=", "!=", "IN",
                                                                          "NOT IN") \
            else (p.value, _textual(c.value))
        return run_id.in_(sa.select(p.run_id).where(p.key == c.key, _compare(column, c.op,
                                                                             value)))
    if c.kind == "tag":
        g = t.run_tags.c
        return run_id.in_(sa.select(g.run_id).where(g.key == c.key, _compare(g.value, c.op,
                                                                             c.value)))
    column = t.runs.c[c.key]
    if c.key == "experiment_id":
        return _compare(sa.cast(column, sa.String), c.op, c.value)
    return _compare(column, c.op, c.value)


def _presence(c: Comparison, present: bool) -> sa.ColumnElement[bool]:
    """``IS NOT NULL`` (``present``) or ``IS NULL``: the run has the key, or the attribute is
    set."""
    if c.kind == "attribute":
        column = t.runs.c[c.key]
        return column.is_not(None) if present else column.is_(None)
    table = {"metric": t.latest_metrics, "param": t.params, "tag": t.run_tags}[c.kind]
    having = sa.select(table.c.run_id).where(table.c.key == c.key)
    return t.runs.c.run_id.in_(having) if present else t.runs.c.run_id.not_in(having)


def _order_key(query: Any, i: int, item: OrderBy) -> tuple[Any, list[SortKey]]:
    """Join what ``item`` sorts on into ``query``; its sort keys."""
    runs = t.runs
    if item.kind == "attribute":
        column = runs.c[item.key]
        kind = str if isinstance(column.type, sa.String) else int
        return query, [SortKey(column, item.ascending, bool(column.nullable), kind)]
    table = {"metric": t.latest_metrics, "param": t.params, "tag": t.run_tags}[item.kind]
    alias = table.alias(f"order_{i}")
    query = query.outerjoin(alias, (alias.c.run_id == runs.c.run_id) & (alias.c.key == item.key))
    if item.kind == "metric":
        return query, [SortKey(alias.c.value, item.ascending, True, float)]
    text = SortKey(alias.c.value, item.ascending, True, str)
    if item.kind == "tag":
        return query, [text]
    # params: numbers in numeric order, then text in text order
    return query, [SortKey(alias.c.num_value, item.ascending, True, float), text]


def _sort_keys(items: Sequence[OrderBy]) -> tuple[Any, list[SortKey]]:
    """The runs joined with what ``items`` sort on, and every sort key: ``items``, then
    newest first, then the run id, which makes the order total (a keyset needs that)."""
    runs = t.runs
    query: Any = runs
    keys: list[SortKey] = []
    for i, item in enumerate(items):
        query, more = _order_key(query, i, item)
        keys += more
    keys += [SortKey(runs.c.start_time, False, False, int),
             SortKey(runs.c.run_id, True, False, str)]
    return query, keys


def _search_id(experiment_ids: Sequence[int], filter: str | None,
               items: Sequence[OrderBy]) -> list[Any]:
    """What a page token is bound to: a token of another search is refused."""
    return [sorted(experiment_ids), (filter or "").strip(),
            [[o.kind, o.key, o.ascending] for o in items]]


def search_run_ids(conn: Connection, experiment_ids: Sequence[int], filter: str | None,
                   order_by: Sequence[str] | None, max_results: int,
                   page_token: str | None) -> tuple[list[str], str | None]:
    """The ids of one page of matching runs, and the token of the next page (or None).

    Pages are keyset pages (:mod:`.keyset`) in the order of :func:`_sort_keys`.
    """
    node = parse_filter(filter)
    items = parse_order_by(order_by)
    query, keys = _sort_keys(items)
    search = _search_id(experiment_ids, filter, items)
    cursor = decode_token(page_token, search, keys)
    select = sa.select(*(k.column.label(f"k{i}") for i, k in enumerate(keys))).select_from(query)
    select = select.where(t.runs.c.experiment_id.in_(list(experiment_ids)))
    if node is not None:
        select = select.where(_condition(node))
    if cursor is not None:
        select = select.where(after(keys, cursor))
    rows = conn.execute(select.order_by(*(k.order() for k in keys)).limit(max_results + 1)).all()
    token = encode_token(search, list(rows[max_results - 1])) if len(rows) > max_results else None
    return [row[-1] for row in rows[:max_results]], token


def _keys_by_distinct(conn: Connection, table: sa.Table, mine: sa.ColumnElement[bool]
                      ) -> list[str]:
    """DISTINCT over the rows of the runs ``mine`` selects: reads each of those rows."""
    return list(conn.execute(sa.select(table.c.key).distinct().where(
        table.c.run_id.in_(sa.select(t.runs.c.run_id).where(mine)))).scalars())


def _keys_by_skip_scan(conn: Connection, table: sa.Table, mine: sa.ColumnElement[bool]
                       ) -> list[str]:
    """A loose index scan on (key, ...): one seek per distinct key in the whole table, each
    kept if one of the runs ``mine`` selects uses it (a probe that stops at the first)."""
    nxt, probe = table.alias("nxt"), table.alias("probe")
    keys = sa.select(sa.func.min(table.c.key).label("key")).cte("keys", recursive=True)
    keys = keys.union_all(sa.select(sa.select(sa.func.min(nxt.c.key)).where(
        nxt.c.key > keys.c.key).scalar_subquery()).where(keys.c.key.is_not(None)))
    # A scalar subquery with LIMIT 1, not EXISTS: PostgreSQL turns an EXISTS into a
    # semi-join that reads every row, where this probe stops at the first match.
    used = (sa.select(sa.literal(1)).where(probe.c.key == keys.c.key,
                                           probe.c.run_id == t.runs.c.run_id, mine)
            .limit(1).scalar_subquery().is_not(None))
    return list(conn.execute(sa.select(keys.c.key).where(keys.c.key.is_not(None), used))
                .scalars())


def run_keys(conn: Connection, experiment_ids: Sequence[int]) -> RunKeys:
    """The distinct metric, param and tag keys of the runs of these experiments.

    When these runs are at least half of the store's (one main experiment: the usual
    case), a skip scan finds the keys in a few milliseconds, and the keys only other runs
    use cost at most a scan of those other runs' rows, fewer than these runs' own. Else a
    DISTINCT over these runs' rows, whose cost grows with them alone.
    """
    mine = t.runs.c.experiment_id.in_(list(experiment_ids))
    count = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
    if not count:
        return RunKeys((), (), ())
    total = conn.execute(sa.select(sa.func.count()).select_from(t.runs)).scalar_one()
    find = _keys_by_skip_scan if 2 * count >= total else _keys_by_distinct
    return RunKeys(*(tuple(sorted(find(conn, table, mine)))  # by code point, as everywhere
                     for table in (t.latest_metrics, t.params, t.run_tags)))
