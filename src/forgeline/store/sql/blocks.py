"""A rollup of every long metric series, kept as its points are logged.

The points of a series are cut, in the order they were logged, into blocks of ``BLOCK``
(1,024): block ``i`` holds points ``i * BLOCK .. (i + 1) * BLOCK - 1``. Each block keeps
its count, its first and last point (by step, then timestamp) and its lowest and highest
value with the step where each first occurs: everything M4 needs (:mod:`.series`). Logging
merges a batch's points into the last, partly filled block and writes new ones: one read
and one write per batch, whatever its size.

A chart of a whole long series then reads about a thousand block rows instead of a
million points (:func:`m4_from_blocks`); zooming into a range still reads the points
(:func:`forgeline.store.sql.series.metric_series`). The blocks are used only when they
describe the series exactly: every point counted (series logged before the rollup
existed have no count, ``latest_metrics.n_points`` is NULL) and the blocks in step order
(a series logged out of order falls back to reading the points).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from itertools import pairwise

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from forgeline.entities import MetricSeries
from forgeline.store.sql import tables as t

__all__ = ["BLOCK", "BLOCK_COLUMNS", "Block", "m4_from_blocks", "m4_points", "merged_blocks",
           "read_blocks"]

BLOCK = 1024  # points per block


@dataclass(frozen=True, slots=True)
class Block:
    series_id: int
    block: int
    n: int
    first_step: int
    first_ts: int
    first_value: float | None
    last_step: int
    last_ts: int
    last_value: float | None
    low: float | None  # None: every value in it is NaN
    low_step: int | None
    high: float | None
    high_step: int | None

    def merged(self, o: Block) -> Block:
        """The summary of both blocks' points (``o``'s come later in the log)."""
        first = self if (self.first_step, self.first_ts) <= (o.first_step, o.first_ts) else o
        last = o if (o.last_step, o.last_ts) >= (self.last_step, self.last_ts) else self
        low, low_step = _extreme(self.low, self.low_step, o.low, o.low_step, min)
        high, high_step = _extreme(self.high, self.high_step, o.high, o.high_step, max)
        return replace(self, n=self.n + o.n, first_step=first.first_step,
                       first_ts=first.first_ts, first_value=first.first_value,
                       last_step=last.last_step, last_ts=last.last_ts,
                       last_value=last.last_value, low=low, low_step=low_step, high=high,
                       high_step=high_step)


def _extreme(a: float | None, a_step: int | None, b: float | None, b_step: int | None,
             pick: type[min] | type[max]) -> tuple[float | None, int | None]:
    """The lower (``min``) or higher (``max``) value, at the lower step on a tie."""
    if a is None or b is None:
        return (b, b_step) if a is None else (a, a_step)
    if a == b:
        return a, min(a_step, b_step)  # type: ignore[type-var]
    return (a, a_step) if pick(a, b) == a else (b, b_step)


def _summaries(series_id: int, start: int, v: np.ndarray, s: np.ndarray, ts: np.ndarray
               ) -> list[Block]:
    """The blocks of one series' points logged from position ``start`` on (values with
    NaN, steps, timestamps, in the order logged)."""
    found = []
    cut = 0
    while cut < len(v):
        block = (start + cut) // BLOCK
        end = min(len(v), (block + 1) * BLOCK - start)
        bv, bs, bts = v[cut:end], s[cut:end], ts[cut:end]
        order = np.lexsort((bts, bs))
        first, last = order[0], order[-1]
        valued = ~np.isnan(bv)
        low = high = low_step = high_step = None
        if valued.any():
            low, high = float(bv[valued].min()), float(bv[valued].max())
            low_step, high_step = int(bs[bv == low].min()), int(bs[bv == high].min())
        found.append(Block(series_id, block, end - cut, int(bs[first]), int(bts[first]),
                           _number(bv[first]), int(bs[last]), int(bts[last]),
                           _number(bv[last]), low, low_step, high, high_step))
        cut = end
    return found


def _number(value: np.float64) -> float | None:
    return None if np.isnan(value) else float(value)


def merged_blocks(conn: Connection, counted: dict[int, int],
                  rows: Sequence[tuple[int, float | None, int, int]]
                  ) -> list[tuple[object, ...]]:
    """The block rows to write for newly logged points (their own blocks, the first one
    merged with the partly filled block it continues), as tuples of ``BLOCK_COLUMNS``.

    Args:
        counted: per series id with a rollup, its points logged before these.
        rows: the new points (series id, value with NaN as None, step, timestamp) in the
            order logged; those of series not in ``counted`` are left out.
    """
    of, values, steps, stamps = zip(*rows, strict=True)
    ids = np.array(of, dtype=np.int64)
    v = np.array(values, dtype=np.float64)  # None -> NaN
    s, ts = np.array(steps, dtype=np.int64), np.array(stamps, dtype=np.int64)
    new: dict[tuple[int, int], Block] = {}
    added: list[int] = []
    for series_id, start in counted.items():
        mine = slice(None) if (ids == series_id).all() else ids == series_id
        if len(v[mine]):
            added.append(series_id)
            for block in _summaries(series_id, start, v[mine], s[mine], ts[mine]):
                new[(series_id, block.block)] = block
    # the blocks these points continue (each series' last one, partly filled): one read
    held = [(i, counted[i] // BLOCK) for i in added if counted[i] % BLOCK]
    if held:
        p = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        # OR of pairs: both SQLite and PostgreSQL seek the primary key for each (a row-value
        # IN list made SQLite scan the table)
        sql = (f"SELECT {', '.join(BLOCK_COLUMNS)} FROM metric_blocks WHERE "
               + " OR ".join([f"(series_id = {p} AND block = {p})"] * len(held))
               + (" FOR UPDATE" if conn.dialect.name == "postgresql" else ""))
        for row in conn.exec_driver_sql(sql, tuple(x for pair in held for x in pair)):
            block = Block(*row)
            key = (block.series_id, block.block)
            new[key] = block.merged(new[key])
    return [tuple(getattr(b, f) for f in BLOCK_COLUMNS) for b in new.values()]


BLOCK_COLUMNS = tuple(f.name for f in fields(Block))  # a block's row, in this order


def read_blocks(conn: Connection, series_id: int) -> list[Block]:
    b = t.metric_blocks.c
    rows = conn.execute(sa.select(t.metric_blocks).where(b.series_id == series_id)
                        .order_by(b.block))
    return [Block(*row) for row in rows]


def m4_from_blocks(blocks: Sequence[Block], n_points: int | None, max_points: int
                   ) -> MetricSeries | None:
    """The whole series downsampled as :mod:`.series` does, from its blocks alone; None
    when the blocks cannot stand for it (see the module's docstring) or are too few to
    fill ``max_points // 4`` chart buckets (a shorter series is read point by point)."""
    buckets = max_points // 4
    if (n_points is None or len(blocks) < buckets
            or sum(b.n for b in blocks) != n_points
            or any(a.last_step > b.first_step for a, b in pairwise(blocks))):
        return None
    # exactly ``buckets`` groups of consecutive blocks, their sizes differing by at most one
    cuts = [len(blocks) * k // buckets for k in range(buckets + 1)]
    groups = []
    for i, j in pairwise(cuts):
        whole = blocks[i]
        for other in blocks[i + 1:j]:
            whole = whole.merged(other)
        groups.append(((whole.first_step, whole.first_value), (whole.low_step, whole.low),
                       (whole.high_step, whole.high), (whole.last_step, whole.last_value)))
    steps, values = m4_points(groups)
    return MetricSeries(steps, values, n_points, True)


Point = tuple[int | None, float | None]  # (step, value); no step: no such point


def m4_points(buckets: Iterable[tuple[Point, Point, Point, Point]]
              ) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The points M4 keeps of each bucket (its first, lowest, highest and last point),
    each once, ordered by step (at one step: first, then the extremes, then last)."""
    kept: dict[tuple[int, float | None], int] = {}  # (step, value) -> rank at that step
    for bucket in buckets:
        for rank, (step, value) in zip((0, 1, 1, 2), bucket, strict=True):
            if step is not None:
                kept.setdefault((step, value), rank)
    ordered = sorted(kept, key=lambda point: (point[0], kept[point]))
    return (tuple(s for s, _ in ordered),
            tuple(math.nan if v is None else v for _, v in ordered))
