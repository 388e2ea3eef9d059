"""The SQL metric series: both ways of aggregating fine buckets agree (each backend uses
one; both run here on SQLite and PostgreSQL), also for negative and sparse steps; the
rollup kept as points are logged."""

from __future__ import annotations

import math
from dataclasses import replace

import sqlalchemy as sa

from forgeline.store.sql import SqlStore
from forgeline.store.sql import tables as t
from forgeline.store.sql.blocks import BLOCK, Block, m4_from_blocks, read_blocks
from forgeline.store.sql.series import FineBucket, fine_stats_grouped, fine_stats_stepped


def test_stepped_and_grouped_fine_buckets_agree(sql_store_uri: str) -> None:
    store = SqlStore(sql_store_uri)
    try:
        exp = store.create_experiment("x").experiment_id
        run = store.create_run(exp, "r", 1).run_id
        steps = [*range(-500, 500, 7), *range(10_000, 10_010), 99_999]
        store.log_batch(run, metrics=[("m", math.nan if s % 49 == 0 else math.sin(s), s, 1)
                                      for s in steps])
        with store.engine.connect() as conn:
            series_id = conn.execute(sa.select(t.latest_metrics.c.series_id)).scalar_one()
            lo, hi, width = -500, 99_999, 997
            stepped = fine_stats_stepped(conn, series_id, lo, hi, width)
            grouped = fine_stats_grouped(conn, series_id, lo, hi, width)
        assert stepped == grouped
        assert sum(f.count for f in stepped) == len(steps)
        assert stepped[0] == FineBucket(0, 143, min(math.sin(s) for s in range(-500, 497, 7)
                                                    if s % 49),
                                        max(math.sin(s) for s in range(-500, 497, 7)
                                            if s % 49))
    finally:
        store.close()


def _value(step: int) -> float:
    return math.nan if step % 997 == 0 or 3000 <= step < 4100 else math.cos(step / 50)


def test_blocks_are_the_same_however_the_points_were_batched(sql_store_uri: str) -> None:
    """The rollup (blocks.py) of 10,000 points logged at once equals that of the same
    points in batches of odd sizes, each merged into the block the last one left open,
    and it summarises the points exactly; the whole series is drawn from it."""
    store = SqlStore(sql_store_uri)
    try:
        exp = store.create_experiment("x").experiment_id
        whole, pieces = (store.create_run(exp, n, 1).run_id for n in ("whole", "pieces"))
        points = [("m", _value(s), s, 7 + s // 3) for s in range(10_000)]
        store.log_batch(whole, metrics=points)
        at = 0
        for size in (1, 1023, 1, 2047, 3, 5000, 1925):  # two series in every batch
            store.log_batch(pieces, metrics=[p for m, v, s, ts in points[at:at + size]
                                             for p in ((m, v, s, ts), ("m2", v, s, ts))])
            at += size
        assert at == len(points)
        with store.engine.connect() as conn:
            ids = {(r, k): i for r, k, i in conn.execute(sa.select(
                t.latest_metrics.c.run_id, t.latest_metrics.c.key,
                t.latest_metrics.c.series_id))}
            a, b, c = (read_blocks(conn, ids[r]) for r in ((whole, "m"), (pieces, "m"),
                                                           (pieces, "m2")))
        assert ([replace(x, series_id=0) for x in a] == [replace(x, series_id=0) for x in b]
                == [replace(x, series_id=0) for x in c])
        assert [x.n for x in a] == [BLOCK] * 9 + [10_000 - 9 * BLOCK]
        third = a[3]  # points 3072..4095: NaN from 3000 to 4099, so every value is NaN
        assert (third.low, third.high, third.low_step, third.first_value) == (None,) * 4
        second = a[2]
        span = range(2 * BLOCK, 3 * BLOCK)
        values = [(_value(s), s) for s in span if not math.isnan(_value(s))]
        assert (second.low, second.low_step) == min(values)
        assert (second.high, second.high_step) == (max(values)[0], min(
            s for v, s in values if v == max(values)[0]))
        assert (second.first_step, second.last_step) == (span[0], span[-1])
        rolled = store.get_metric_series(whole, "m", max_points=40)  # 10 buckets, 10 blocks
        assert rolled.total == 10_000 and rolled.downsampled
        assert rolled.steps[0] == 0 and rolled.steps[-1] == 9_999
        lowest = min(v for v in rolled.values if not math.isnan(v))
        assert lowest == min(_value(s) for s in range(10_000) if not math.isnan(_value(s)))
    finally:
        store.close()


def test_series_without_usable_blocks_are_read_point_by_point(sql_store_uri: str) -> None:
    """Points logged out of step order, and series logged before the rollup existed (no
    count), are drawn from the points themselves, as a range always is."""
    store = SqlStore(sql_store_uri)
    try:
        exp = store.create_experiment("x").experiment_id
        run = store.create_run(exp, "r", 1).run_id
        backwards = [("late", float(s), s, 1) for s in range(9_999, -1, -1)]
        store.log_batch(run, metrics=[("old", _value(s), s, 1) for s in range(10_000)]
                        + backwards)
        with store.engine.begin() as conn:  # as a series migrated from revision 0003
            conn.execute(t.latest_metrics.update().where(t.latest_metrics.c.key == "old")
                         .values(n_points=None))
            conn.execute(t.metric_blocks.delete().where(t.metric_blocks.c.series_id.in_(
                sa.select(t.latest_metrics.c.series_id).where(
                    t.latest_metrics.c.key == "old"))))
        store.log_batch(run, metrics=[("old", 5.0, 10_000, 1)])
        for key, total in (("old", 10_001), ("late", 10_000)):
            found = store.get_metric_series(run, key, max_points=40)
            exact = store.get_metric_series(run, key, max_points=40, min_step=0)
            assert found == exact and found.total == total
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(t.metric_blocks)
                                ).scalar_one() == 10  # the backwards series' blocks only
    finally:
        store.close()


def test_blocks_fill_every_chart_bucket() -> None:
    """A few more blocks than buckets still fill every bucket (13 blocks in 10 buckets: 3
    of two blocks and 7 of one), not half of them (two blocks in every bucket: 7)."""
    blocks = [Block(1, i, 2, 2 * i, 0, 2.0 * i, 2 * i + 1, 0, 2.0 * i + 1, 2.0 * i, 2 * i,
                    2.0 * i + 1, 2 * i + 1) for i in range(13)]
    series = m4_from_blocks(blocks, 26, max_points=40)
    assert series is not None and series.downsampled and series.total == 26
    # each bucket keeps its first (= lowest) and last (= highest) point
    assert series.steps == (0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 17, 18, 19, 20, 21,
                            22, 25)
    assert m4_from_blocks(blocks[:9], 18, max_points=40) is None  # fewer blocks than buckets
