"""Keyset pages for run search: a page token names where the previous page stopped.

A token is URL-safe base64 of JSON ``{"k": [...], "q": "<16 hex>"}``. ``k`` holds the
last row's value of every sort key, its run id last (the final tie-breaker, which makes
the order total); ``q`` is a checksum of those values and of the search (experiments,
filter, order_by). The next page is the same query with ``WHERE <row> after <k>``: a deep
page costs what the first one costs (no OFFSET to skip), and runs created between two
pages neither repeat rows nor push rows already returned onto the next page. A token that
is malformed, altered or replayed with another search is refused with InvalidInput, so a
caller never gets a silently wrong page.

Missing values (no such metric, param or tag; a NaN metric) sort last in both directions,
as on the first page. Row-value comparison cannot say "NULLs last", so "after" is spelled
out key by key: ``k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...``, where a NULL ties only with
NULL and nothing but NULL comes after a non-NULL value. That reads the same on SQLite and
PostgreSQL, with each database's own collation for text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from forgeline.errors import InvalidInput

__all__ = ["SortKey", "after", "decode_token", "encode_token"]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY term: the expression (selected with each row), its direction, whether
    it can be NULL, and the Python type its values have (float, int or str)."""

    column: Any
    ascending: bool
    nullable: bool
    kind: type

    def order(self) -> Any:
        ordered = self.column.asc() if self.ascending else self.column.desc()
        return ordered.nulls_last() if self.nullable else ordered


def _beyond(key: SortKey, value: Any) -> Any:
    """Rows whose ``key`` sorts strictly after ``value``; None when none can."""
    if value is None:
        return None  # NULLs come last: after a NULL there are only tied NULLs
    beyond = key.column > value if key.ascending else key.column < value
    return sa.or_(beyond, key.column.is_(None)) if key.nullable else beyond


def _tied(key: SortKey, value: Any) -> Any:
    return key.column.is_(None) if value is None else key.column == value


def after(keys: Sequence[SortKey], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """The rows that come after ``values`` in the order of ``keys`` (NULLs last)."""
    terms = []
    for i, key in enumerate(keys):
        beyond = _beyond(key, values[i])
        if beyond is not None:
            terms.append(sa.and_(*(_tied(k, v) for k, v in zip(keys[:i], values[:i],
                                                               strict=True)), beyond))
    condition = sa.or_(*terms) if terms else sa.false()
    first, value = keys[0], values[0]
    if value is None:  # a bound the planner can use on its own
        return sa.and_(_tied(first, None), condition)
    if not first.nullable:
        return sa.and_(first.column >= value if first.ascending else first.column <= value,
                       condition)
    return condition


def _checksum(search: Any, values: Sequence[Any]) -> str:
    text = json.dumps([search, list(values)], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(search: Any, values: Sequence[Any]) -> str:
    """The token of the page after the row whose sort-key values are ``values``.

    ``search`` is any JSON value that identifies the search the token belongs to.
    """
    payload = {"k": list(values), "q": _checksum(search, values)}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _bad_token(token: str) -> InvalidInput:
    shown = token if len(token) <= 48 else token[:45] + "..."
    return InvalidInput(
        f"Invalid page token {shown!r}: it is malformed, was altered, or belongs to a search "
        "with other experiments, filter or order_by. Restart from the first page (search "
        "again without a page token).",
        hint="Pass back the token of the previous page unchanged, with the same search.")


def _checked(value: Any, key: SortKey) -> Any:
    if value is None and key.nullable:
        return None
    if key.kind is float and type(value) in (float, int) and not math.isnan(value):
        return float(value)
    if type(value) is key.kind and key.kind is not float:
        return value
    raise ValueError(f"{value!r} does not fit {key.kind.__name__}")


def decode_token(token: str | None, search: Any, keys: Sequence[SortKey]) -> list[Any] | None:
    """The sort-key values a token carries (None for no token: the first page).

    InvalidInput, saying to restart from the first page, for a token this search did not
    issue.
    """
    if not token:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        values = payload["k"]
        if (not isinstance(values, list) or len(values) != len(keys)
                or payload["q"] != _checksum(search, values)):
            raise ValueError("not this search's token")
        return [_checked(v, k) for v, k in zip(values, keys, strict=True)]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise _bad_token(token) from None
