"""Compile the search language (:mod:`forgeline.store.filter`) into SQL over the runs table.

Each comparison on a metric, param or tag becomes ``run_id IN (subquery)`` served by an
index on (key, value); sorting on a metric or param is an outer join, missing values last.
Pages are offsets carried in an opaque token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeline.errors import InvalidInput
from forgeline.store.filter import And, Comparison, Node, Or, parse_filter, parse_order_by
from forgeline.store.sql import tables as t

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


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidInput(f"Invalid page token {token!r}.",
                       hint="Pass the token of the previous page as it was returned.")


def search_run_ids(conn: Connection, experiment_ids: Sequence[int], filter: str | None,
                   order_by: Sequence[str] | None, max_results: int,
                   page_token: str | None) -> tuple[list[str], str | None]:
    """The ids of one page of matching runs, and the token of the next page (or None)."""
    node = parse_filter(filter)
    offset = _decode_token(page_token)
    runs = t.runs
    query = sa.select(runs.c.run_id).where(runs.c.experiment_id.in_(list(experiment_ids)))
    if node is not None:
        query = query.where(_condition(node))
    sort: list[Any] = []
    for i, item in enumerate(parse_order_by(order_by)):
        if item.kind == "attribute":
            column: Any = runs.c[item.key]
        else:
            table = {"metric": t.latest_metrics, "param": t.params, "tag": t.run_tags}[item.kind]
            alias = table.alias(f"order_{i}")
            query = query.outerjoin(alias, (alias.c.run_id == runs.c.run_id)
                                    & (alias.c.key == item.key))
            column = alias.c.num_value if item.kind == "param" else alias.c.value
            if item.kind == "param":  # numbers in numeric order, then text in text order
                sort.append(column.asc().nulls_last() if item.ascending
                            else column.desc().nulls_last())
                column = alias.c.value
        sort.append(column.asc().nulls_last() if item.ascending else column.desc().nulls_last())
    sort += [runs.c.start_time.desc(), runs.c.run_id]
    rows = conn.execute(query.order_by(*sort).limit(max_results + 1).offset(offset)).scalars()
    ids = list(rows)
    token = _encode_token(offset + max_results) if len(ids) > max_results else None
    return ids[:max_results], token
