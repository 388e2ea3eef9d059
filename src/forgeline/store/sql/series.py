"""One metric series for a chart, downsampled in SQL: the rows stay in the database.

Every statement is served by the index on ``metrics (series_id, step)``:

1. Read the range's first ``max_points + 1`` points. If there are no more, they are the
   answer, exact (this is what a chart gets when it zooms in).
2. Else cut [first step, last step] into ``max_points // 4`` buckets of equal step width
   (a chart's columns), each into ``FINE`` fine buckets, and count the points and take the
   lowest and highest value of every fine bucket in SQL. This reads each value once,
   which is the floor: no index holds the values.
3. Keep M4's points of each bucket (Jugel et al., VLDB 2014): its first and last point
   (two index seeks) and its lowest and highest point, found by scanning the one fine
   bucket that holds each, stopping at the first match. Four points a bucket at most, so
   never more than ``max_points``; the range's first and last point and its global
   extremes are always among them.

Step 2 runs, on SQLite, as one small statement per fine bucket straight on the driver's
cursor: one GROUP BY would sort every row into a temporary B-tree, about three times
slower there. On PostgreSQL it is one GROUP BY, where a statement per bucket would cost a
round trip each. Step 3 is one statement per 1,000 buckets. NaN is stored as NULL: MIN and
MAX skip it, and a bucket's first or last point may be NaN, which a chart draws as a gap.

On SQLite the whole call costs about 1.4 times one ``SELECT COUNT(*), MIN(value),
MAX(value)`` over the series (benchmarks/bench_metric_series.py: 241 ms against 172 ms for
1,000,000 points on 2 cores); on PostgreSQL the GROUP BY dominates (513 ms). The whole of a
long series (no step range, at least ``max_points // 4`` blocks) is therefore drawn from
the rollup kept as its points are logged (:mod:`.blocks`), the same M4 over blocks of
1,024 points instead of step buckets, without reading a point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from forgeline.entities import MetricSeries
from forgeline.store.sql import tables as t
from forgeline.store.sql.blocks import m4_from_blocks, m4_points, read_blocks

__all__ = ["FINE", "FineBucket", "fine_stats_grouped", "fine_stats_stepped", "metric_series"]

FINE = 8  # fine buckets per bucket: the scans for the extremes read 1/FINE of the rows
_CHUNK = 1000  # buckets refined per statement (8 parameters each)


@dataclass(frozen=True, slots=True)
class FineBucket:
    index: int  # from the range's first step, in widths
    count: int
    low: float | None  # None: every value in it is NaN
    high: float | None


@dataclass(frozen=True, slots=True)
class _Bucket:
    """One chart bucket: its step range and the fine ranges that hold its extremes."""

    lo: int
    hi: int
    low: float | None
    low_range: tuple[int, int]
    high: float | None
    high_range: tuple[int, int]


def _value(v: float | None) -> float:
    return math.nan if v is None else v


def _range(query: Any, series_id: int, min_step: int | None, max_step: int | None) -> Any:
    m = t.metrics.c
    query = query.where(m.series_id == series_id)
    if min_step is not None:
        query = query.where(m.step >= min_step)
    return query if max_step is None else query.where(m.step <= max_step)


_STEPPED = ("SELECT COUNT(*), MIN(value), MAX(value) FROM metrics "
            "WHERE series_id = {p} AND step >= {p} AND step <= {p}")


def fine_stats_stepped(conn: Connection, series_id: int, lo: int, hi: int, width: int
                       ) -> list[FineBucket]:
    """Count, lowest and highest value per fine bucket: one statement per bucket."""
    p = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = _STEPPED.format(p=p)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    found = []
    try:
        for j in range((hi - lo) // width + 1):
            start = lo + j * width
            n, low, high = cursor.execute(sql, (series_id, start, min(start + width - 1, hi))
                                          ).fetchone()
            if n:
                found.append(FineBucket(j, n, low, high))
    except conn.dialect.loaded_dbapi.Error as e:
        raise exc.DBAPIError.instance(sql, None, e, conn.dialect.loaded_dbapi.Error) from e
    finally:
        cursor.close()
    return found


_GROUPED = ("SELECT (step - CAST({p} AS BIGINT)) / CAST({p} AS BIGINT) AS j, COUNT(*), "
            "MIN(value), MAX(value) FROM metrics "
            "WHERE series_id = {p} AND step >= {p} AND step <= {p} GROUP BY 1 ORDER BY 1")


def fine_stats_grouped(conn: Connection, series_id: int, lo: int, hi: int, width: int
                       ) -> list[FineBucket]:
    """Count, lowest and highest value per fine bucket: one GROUP BY."""
    p = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows = conn.exec_driver_sql(_GROUPED.format(p=p), (lo, width, series_id, lo, hi))
    return [FineBucket(int(j), n, low, high) for j, n, low, high in rows]


def _buckets(fine: Sequence[FineBucket], lo: int, hi: int, width: int) -> list[_Bucket]:
    """Group fine buckets FINE by FINE into chart buckets, noting where the extremes are."""
    def bounds(first: int, n: int) -> tuple[int, int]:
        start = lo + first * width
        return start, min(start + n * width - 1, hi)

    groups: dict[int, list[FineBucket]] = {}
    for f in fine:
        groups.setdefault(f.index // FINE, []).append(f)
    buckets = []
    for b, members in groups.items():
        whole = bounds(b * FINE, FINE)
        valued = [f for f in members if f.low is not None]  # then f.high is not None either
        if not valued:
            buckets.append(_Bucket(whole[0], whole[1], None, whole, None, whole))
            continue
        low, high = min(valued, key=attrgetter("low")), max(valued, key=attrgetter("high"))
        buckets.append(_Bucket(whole[0], whole[1], low.low, bounds(low.index, 1),
                               high.high, bounds(high.index, 1)))
    return buckets


_SEEKS = (  # per bucket: what, where, which rows, in which order (the first one is taken)
    ("step", "lo", "hi", "", "step"),  # its first point's step
    ("value", "lo", "hi", "", "step, timestamp"),  # and value
    ("step", "lo", "hi", "", "step DESC"),  # its last point's
    ("value", "lo", "hi", "", "step DESC, timestamp DESC"),
    ("step", "nlo", "nhi", " AND value = b.low", "step"),  # where its lowest value is
    ("step", "xlo", "xhi", " AND value = b.high", "step"),  # and its highest
)


def _refine_sql(p: str, rows: int) -> str:
    bigint, real = f"CAST({p} AS BIGINT)", f"CAST({p} AS DOUBLE PRECISION)"
    row = f"({', '.join([bigint] * 2 + [bigint, bigint, real] * 2)})"
    columns = [f"(SELECT {what} FROM metrics WHERE series_id = {p} AND step >= b.{lo} AND "
               f"step <= b.{hi}{match} ORDER BY {order} LIMIT 1)"
               for what, lo, hi, match, order in _SEEKS]
    return (f"WITH b(lo, hi, nlo, nhi, low, xlo, xhi, high) AS "
            f"(VALUES {', '.join([row] * rows)}) SELECT {', '.join(columns)} FROM b")


def _refine(conn: Connection, series_id: int, buckets: Sequence[_Bucket]) -> list[Any]:
    """Per bucket, its first and last point (step, value) and the steps of its lowest and
    highest value: one statement per _CHUNK buckets."""
    p = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    found: list[Any] = []
    for i in range(0, len(buckets), _CHUNK):
        chunk = buckets[i:i + _CHUNK]
        params: list[Any] = []
        for b in chunk:
            params += [b.lo, b.hi, *b.low_range, b.low, *b.high_range, b.high]
        params += [series_id] * len(_SEEKS)
        found += conn.exec_driver_sql(_refine_sql(p, len(chunk)), tuple(params)).all()
    return found


def _m4(buckets: Sequence[_Bucket], found: Sequence[Any]
        ) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The points the buckets keep, each once, by step (first, extremes, last)."""
    return m4_points(((first, first_value), (low, b.low), (high, b.high), (last, last_value))
                     for b, (first, first_value, last, last_value, low, high)
                     in zip(buckets, found, strict=True))


def metric_series(conn: Connection, series_id: int | None, max_points: int,
                  min_step: int | None, max_step: int | None,
                  n_points: int | None = None) -> MetricSeries:
    """The series of ``series_id`` (None: a key never logged) between the steps given.

    ``n_points``: how many points the series has, when its blocks count them
    (:mod:`.blocks`); the whole of a long series is then drawn from its blocks.
    """
    if series_id is None:
        return MetricSeries((), (), 0, False)
    m = t.metrics.c
    head = conn.execute(_range(sa.select(m.step, m.value), series_id, min_step, max_step)
                        .order_by(m.step, m.timestamp).limit(max_points + 1)).all()
    if len(head) <= max_points:
        return MetricSeries(tuple(s for s, _ in head), tuple(_value(v) for _, v in head),
                            len(head), False)
    if min_step is None and max_step is None:
        rolled = m4_from_blocks(read_blocks(conn, series_id), n_points, max_points)
        if rolled is not None:
            return rolled
    if conn.dialect.name == "postgresql":
        # The refine statement's estimated cost is high and its real cost low: compiling it
        # (JIT) took longer than running it. For this read transaction only.
        conn.exec_driver_sql("SET LOCAL jit = off")
    lo = head[0][0]
    hi = conn.execute(_range(sa.select(sa.func.max(m.step)), series_id, min_step,
                             max_step)).scalar_one()
    width = max(1, -(-(hi - lo + 1) // ((max_points // 4) * FINE)))
    stats = fine_stats_stepped if conn.dialect.name == "sqlite" else fine_stats_grouped
    fine = stats(conn, series_id, lo, hi, width)
    buckets = _buckets(fine, lo, hi, width)
    steps, values = _m4(buckets, _refine(conn, series_id, buckets))
    return MetricSeries(steps, values, sum(f.count for f in fine), True)
