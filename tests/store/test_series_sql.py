"""The SQL metric series: both ways of aggregating fine buckets agree (each backend uses
one; both run here on SQLite and PostgreSQL), also for negative and sparse steps."""

from __future__ import annotations

import math

import sqlalchemy as sa

from forgeline.store.sql import SqlStore
from forgeline.store.sql import tables as t
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
