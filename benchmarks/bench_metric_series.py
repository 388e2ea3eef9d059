"""get_metric_series on a 1,000,000-point series; list_run_keys over 10,000 runs.

Target: a 1,000,000-step series comes back as at most 2,000 points that keep its shape in
under ~100 ms on SQLite (median of --reps, max_points=2000). The whole series is drawn from
the rollup kept as points are logged (store/sql/blocks.py); the same call with a range
(``min_step=0``) reads the points, as before the rollup. Also timed: a zoom to 2,000
steps (exact points) and to 100,000 steps (downsampled). References, measured in the
same run on the same store:

- the floor: one SQL statement that reads every value of the series once (COUNT, MIN and
  MAX over the series): an exact downsampling cannot read less, as no index holds values;
- the Store base class's default (get_metric_history, then MinMaxLTTB in Python), what a
  backend without its own query does.

list_run_keys over 10,000 runs x 20 metrics x 20 params. Both stores are written through
the Store API on SQLite (timed); PostgreSQL gets copies of their tables by COPY (as in
bench_search.py, whose copy_store this uses).

    .venv/bin/python benchmarks/bench_metric_series.py [--points 1000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    Neighbours,
    check_quiet,
    median,
    percentile,
    postgres,
    postgres_version,
    print_machine,
    ratio,
    scratch_dir,
    sqlite_uri,
    write_json,
)
from bench_search import copy_store

TARGET_MS = 100.0
MAX_POINTS = 2000
CHUNK = 100_000


def populate_series(uri: str, points: int, seed: int) -> tuple[str, float]:
    """One run: ``loss`` at every step and ``lr`` every 10th, logged in chunks as a
    training loop's buffered client does. (run id, seconds)."""
    from forgeline.store import close_stores, get_store

    rng = random.Random(seed)
    store = get_store(uri)
    run_id = store.create_run(store.get_or_create_experiment("series").experiment_id,
                              "long", 0).run_id
    start = time.perf_counter()
    for first in range(0, points, CHUNK):
        steps = range(first, min(first + CHUNK, points))
        loss = [("loss", 3.0 + rng.random() if rng.random() < 1e-5  # a rare spike
                  else math.exp(-s / points) + 0.05 * rng.random(), s, s) for s in steps]
        lr = [("lr", 0.1 * 0.5 ** (s // (points // 4 or 1)), s, s) for s in steps[::10]]
        store.log_batch(run_id, metrics=loss + lr)
    elapsed = time.perf_counter() - start
    close_stores()
    return run_id, elapsed


def populate_keys(uri: str, runs: int, n_metrics: int, n_params: int) -> float:
    """``runs`` runs with ``n_metrics`` metrics and ``n_params`` params each; seconds."""
    from forgeline.store import close_stores, get_store

    store = get_store(uri)
    eid = store.get_or_create_experiment("keys").experiment_id
    start = time.perf_counter()
    for i in range(runs):
        run_id = store.create_run(eid, f"run-{i}", i, tags={"team": "risk"}).run_id
        store.log_batch(run_id, metrics=[(f"m{j}", j / 7, 0, i) for j in range(n_metrics)],
                        params={f"p{j}": str(i % (j + 2)) for j in range(n_params)})
    elapsed = time.perf_counter() - start
    close_stores()
    return elapsed


def _times(fn: Callable[[], Any], reps: int) -> list[float]:
    fn()
    found = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        found.append((time.perf_counter() - t0) * 1000)
    return found


def _floor(store: Any, run_id: str) -> Callable[[], Any]:
    """One statement reading every value of the series once."""
    import sqlalchemy as sa

    from forgeline.store.sql import tables as t

    lm, m = t.latest_metrics.c, t.metrics.c
    with store.engine.connect() as conn:
        series_id = conn.execute(sa.select(lm.series_id).where(
            lm.run_id == run_id, lm.key == "loss")).scalar_one()
    query = sa.select(sa.func.count(), sa.func.min(m.value), sa.func.max(m.value)).where(
        m.series_id == series_id)

    def read() -> Any:
        with store.engine.connect() as conn:
            return conn.execute(query).one()
    return read


def time_series(uri: str, run_id: str, points: int, reps: int, default_reps: int
                ) -> dict[str, Any]:
    """Median (and p95) ms of each call; checks what the calls return."""
    from forgeline.store import Store, get_store

    store = get_store(uri)
    whole = store.get_metric_series(run_id, "loss", MAX_POINTS)
    assert whole.total == points and len(whole.steps) <= MAX_POINTS and whole.downsampled
    middle = points // 2
    calls: dict[str, Callable[[], Any]] = {
        "whole series": lambda: store.get_metric_series(run_id, "loss", MAX_POINTS),
        "whole series from the points (min_step=0)": lambda: store.get_metric_series(
            run_id, "loss", MAX_POINTS, 0),
        "zoom 2,000 steps (exact)": lambda: store.get_metric_series(
            run_id, "loss", MAX_POINTS, middle, middle + 1999),
        "zoom 100,000 steps": lambda: store.get_metric_series(
            run_id, "loss", MAX_POINTS, middle, middle + 99_999),
        "floor: read each value once": _floor(store, run_id),
    }
    results: dict[str, Any] = {}
    for label, fn in calls.items():
        times = _times(fn, reps)
        results[label] = {"median_ms": median(times), "p95_ms": percentile(times, 95)}
    default = _times(lambda: Store.get_metric_series(store, run_id, "loss", MAX_POINTS),
                     default_reps)
    results["Store default (history + MinMaxLTTB)"] = {"median_ms": median(default),
                                                       "p95_ms": max(default)}
    results["points returned"] = len(whole.steps)
    store.close()
    return results


def time_keys(uri: str, reps: int) -> dict[str, Any]:
    from forgeline.store import get_store

    store = get_store(uri)
    experiment = store.get_experiment_by_name("keys")
    assert experiment is not None
    keys = store.list_run_keys([experiment.experiment_id])
    times = _times(lambda: store.list_run_keys([experiment.experiment_id]), reps)
    store.close()
    return {"median_ms": median(times), "p95_ms": percentile(times, 95),
            "keys": [len(keys.metrics), len(keys.params), len(keys.tags)]}


def report(backend: str, series: dict[str, Any], keys: dict[str, Any]) -> None:
    ours = series["whole series"]["median_ms"]
    verdict = "MET" if ours < TARGET_MS else "MISSED"
    print(f"{backend}: get_metric_series, {series['points returned']} points returned")
    for label, q in series.items():
        if isinstance(q, dict):
            print(f"  {label:<40} median {q['median_ms']:8.1f} ms   p95 {q['p95_ms']:8.1f} ms")
    floor = series["floor: read each value once"]["median_ms"]
    default = series["Store default (history + MinMaxLTTB)"]["median_ms"]
    print(f"  whole series: {verdict} (target < {TARGET_MS:.0f} ms); "
          f"{ratio(ours, floor)} the floor; the Store default takes {ratio(default, ours)} as "
          "long")
    print(f"{backend}: list_run_keys {keys['keys']} keys: median {keys['median_ms']:.1f} ms, "
          f"p95 {keys['p95_ms']:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10_000, help="runs for list_run_keys")
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--params", type=int, default=20)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--default-reps", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    print_machine()
    check_quiet()
    results: dict[str, Any] = {"points": args.points, "runs": args.runs,
                               "target_ms": TARGET_MS, "max_points": MAX_POINTS}
    with scratch_dir("series") as tmp:
        series_uri, keys_uri = sqlite_uri(tmp / "series.db"), sqlite_uri(tmp / "keys.db")
        run_id, series_s = populate_series(series_uri, args.points, args.seed)
        keys_s = populate_keys(keys_uri, args.runs, args.metrics, args.params)
        print(f"SQLite: {args.points:,} points logged in {series_s:.1f} s; {args.runs:,} runs x "
              f"{args.metrics} metrics x {args.params} params in {keys_s:.1f} s (Store API)")
        with Neighbours() as neighbours:
            sqlite = (time_series(series_uri, run_id, args.points, args.reps,
                                  args.default_reps), time_keys(keys_uri, args.reps))
        print(f"  ({neighbours.report()} while measuring)")
        results["sqlite"] = {"series": sqlite[0], "keys": sqlite[1]}
        report("SQLite", *sqlite)
        if not args.no_postgres:
            with postgres() as server:
                pg_series, pg_keys = server.new_database(), server.new_database()
                copy_s = copy_store(series_uri, pg_series) + copy_store(keys_uri, pg_keys)
                version = postgres_version(pg_series)
                print(f"PostgreSQL {version}: both stores copied in by COPY + ANALYZE "
                      f"({copy_s:.1f} s)")
                with Neighbours() as neighbours:
                    pg = (time_series(pg_series, run_id, args.points, args.reps,
                                      args.default_reps), time_keys(pg_keys, args.reps))
                print(f"  ({neighbours.report()} while measuring, the server included)")
            results["postgres"] = {"version": version, "series": pg[0], "keys": pg[1]}
            report(f"PostgreSQL {version}", *pg)
    write_json(args.json, "metric_series", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
