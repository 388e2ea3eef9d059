"""Figure 2: ``search_runs`` latency over 10,000 runs x 20 metrics, on SQLite and PostgreSQL.

Target: under 100 ms per query (median and p95 over 20 repetitions, max_results=100),
for a two-clause filter (``metrics.m3 > 0.5 and params.depth = '6'``) and the same filter
sorted by ``metrics.m0 DESC``. Reference: MLflow's ``search_runs`` with the same filter
over the same runs (same names, values and params), in .venv-bench.

Pages: with no filter, the last page (runs 9,901-10,000 of 100-run keyset pages) against
the first, newest first and by ``metrics.m0 DESC``: a deep page should cost what the first
one costs (the ratio is printed).

    .venv/bin/python benchmarks/bench_search.py [--runs 10000] [--metrics 20] [--profile]

The SQLite store is written through the Store API (``create_run`` + one ``log_batch`` of
20 metric points and 3 params per run, one process: two processes are slower, as they
wait on each other's write lock); that population is timed and printed, never counted
in the query figures. Writing 10,000 runs through the API to PostgreSQL would take about
two minutes here, so the PostgreSQL store gets the SQLite store's rows by COPY, and the
API's write rate on PostgreSQL is measured on a sample instead. MLflow: the same, with a
sample of runs through its API and the rest copied from the row shapes MLflow wrote.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from _common import (
    Neighbours,
    check_quiet,
    median,
    percentile,
    postgres,
    postgres_version,
    print_machine,
    profile,
    ratio,
    run_mlflow,
    scratch_dir,
    search_filter,
    search_order,
    search_run,
    sqlite_uri,
    write_json,
)

TARGET_MS = 100.0
MAX_RESULTS = 100


def _populate_chunk(uri: str, experiment_id: str, first: int, stop: int, n_metrics: int,
                    seed: int) -> int:
    from forgeline.store import get_store

    store = get_store(uri)
    for i in range(first, stop):
        name, start_time, params, metrics = search_run(i, n_metrics, seed)
        run = store.create_run(experiment_id, name, start_time)
        store.log_batch(run.run_id, metrics=metrics, params=params)
    store.close()
    return stop - first


def populate(uri: str, n_runs: int, n_metrics: int, seed: int, workers: int) -> float:
    """Write the runs through the Store API; seconds taken (store creation excluded)."""
    from forgeline.store import close_stores, get_store

    experiment_id = get_store(uri).get_or_create_experiment("bench").experiment_id
    close_stores()  # no open connection crosses into the workers
    bounds = [n_runs * w // workers for w in range(workers + 1)]
    start = time.perf_counter()
    if workers == 1:
        done = _populate_chunk(uri, experiment_id, 0, n_runs, n_metrics, seed)
    else:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            done = sum(pool.map(_populate_chunk, [uri] * workers, [experiment_id] * workers,
                                bounds[:-1], bounds[1:], [n_metrics] * workers,
                                [seed] * workers))
    elapsed = time.perf_counter() - start
    close_stores()
    assert done == n_runs
    return elapsed


def api_rate(uri: str, n_runs: int, n_metrics: int, seed: int) -> float:
    """Seconds per run written through the Store API by one process (after one warm-up)."""
    from forgeline.store import close_stores, get_store

    experiment_id = get_store(uri).get_or_create_experiment("bench").experiment_id
    _populate_chunk(uri, experiment_id, 0, 1, n_metrics, seed)
    start = time.perf_counter()
    _populate_chunk(uri, experiment_id, 1, n_runs + 1, n_metrics, seed)
    elapsed = time.perf_counter() - start
    close_stores()
    return elapsed / n_runs


def copy_store(src_uri: str, dst_uri: str) -> float:
    """Copy every tracking table from one store into an empty PostgreSQL store (COPY).

    The rows are exactly what the Store API wrote into ``src_uri``; serial ids keep their
    values and the sequences are moved past them. Then ANALYZE, as autovacuum would do on
    a store that grew over time. Returns the seconds taken.
    """
    import sqlalchemy as sa

    from forgeline.store import close_stores, get_store
    from forgeline.store.sql import tables as t

    start = time.perf_counter()
    src = get_store(src_uri).engine  # type: ignore[attr-defined]
    dst = get_store(dst_uri).engine  # type: ignore[attr-defined]
    order = (t.experiments, t.experiment_tags, t.runs, t.latest_metrics, t.metrics,
             t.metric_blocks, t.params, t.run_tags)
    raw = dst.raw_connection()
    try:
        with raw.cursor() as cur:
            for table in reversed(order):
                cur.execute(f"DELETE FROM {table.name}")
            for table in order:
                columns = [c.name for c in table.columns]
                with src.connect() as conn, cur.copy(
                        f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in conn.execute(sa.select(table)):
                        copy.write_row(tuple(row))
            for table, column in ((t.experiments, "experiment_id"),
                                  (t.latest_metrics, "series_id")):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table.name}', "
                            f"'{column}'), (SELECT max({column}) FROM {table.name}))")
            cur.execute("ANALYZE")  # inside the transaction: kept by the commit
        raw.commit()
    finally:
        raw.close()
    close_stores()
    return time.perf_counter() - start


def time_queries(uri: str, reps: int, want_profile: bool) -> dict[str, Any]:
    """Median and p95 of each query through ``Client.search_runs``, after two warm-ups."""
    import forgeline as fl

    client = fl.Client(uri)
    results: dict[str, Any] = {}
    for label, order in (("filter", None), ("filter+order", [search_order()])):
        def query(order: list[str] | None = order) -> Any:
            return client.search_runs("bench", filter=search_filter(), order_by=order,
                                      max_results=MAX_RESULTS)
        for _ in range(2):
            query()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            found = query()
            times.append(time.perf_counter() - t0)
        results[label] = {"median_ms": median(times) * 1000, "p95_ms": percentile(times, 95) * 1000,
                          "returned": len(found), "names": [r.name for r in found]}
        if want_profile:
            profile(query, f"search_runs {label} on {uri.split(':')[0]}")
    client.store.close()
    return results


def _median_ms(fn: Any, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times) * 1000


def time_pages(uri: str, reps: int) -> dict[str, Any]:
    """The first and the last page of every run (no filter), median ms of each."""
    from forgeline.store import get_store

    store = get_store(uri)
    experiment = store.get_experiment_by_name("bench")
    assert experiment is not None
    eids = [experiment.experiment_id]
    results: dict[str, Any] = {}
    for label, order in (("newest first", None), ("metrics.m0 DESC", [search_order()])):
        tokens: list[str | None] = [None]
        while (token := store.search_runs(eids, None, order, MAX_RESULTS,
                                          tokens[-1]).token) is not None:
            tokens.append(token)
        last = tokens[-1]
        results[label] = {
            "pages": len(tokens),
            "first_ms": _median_ms(lambda o=order: store.search_runs(eids, None, o, MAX_RESULTS),
                                   reps),
            "last_ms": _median_ms(lambda o=order, t=last: store.search_runs(
                eids, None, o, MAX_RESULTS, t), reps)}
    store.close()
    return results


def _pages_line(label: str, p: dict[str, Any]) -> str:
    return (f"  pages, {label:<16} first {p['first_ms']:6.1f} ms, page {p['pages']} "
            f"{p['last_ms']:6.1f} ms (median): last/first {ratio(p['last_ms'], p['first_ms'])}")


def _line(label: str, q: dict[str, Any]) -> str:
    return (f"  {label:<13} median {q['median_ms']:7.1f} ms   p95 {q['p95_ms']:7.1f} ms   "
            f"({q['returned']} runs returned)")


def _verdict(q: dict[str, Any]) -> str:
    ok = q["median_ms"] < TARGET_MS and q["p95_ms"] < TARGET_MS
    return "MET" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="processes that populate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--pg-api-runs", type=int, default=200,
                        help="runs written to PostgreSQL through the Store API to time it; "
                             "the measured store is copied from the SQLite one")
    parser.add_argument("--mlflow-api-runs", type=int, default=200,
                        help="runs written to MLflow through create_run + log_batch; the "
                             "rest go into MLflow's tables in bulk")
    parser.add_argument("--profile", action="store_true", help="cProfile one query of each kind")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    print_machine()
    check_quiet()
    print(f"search_runs over {args.runs:,} runs x {args.metrics} metrics + 3 params, "
          f"filter {search_filter()!r}, order_by [{search_order()!r}], "
          f"max_results={MAX_RESULTS}, {args.reps} repetitions; target < {TARGET_MS:.0f} ms")
    results: dict[str, Any] = {"runs": args.runs, "metrics": args.metrics, "reps": args.reps,
                               "target_ms": TARGET_MS}
    with scratch_dir("search") as tmp:
        uri = sqlite_uri(tmp / "store.db")
        pop_s = populate(uri, args.runs, args.metrics, args.seed, args.workers)
        print(f"Forgeline SQLite: populated in {pop_s:.1f} s ({args.runs / pop_s:,.0f} runs/s "
              f"through the Store API, {args.workers} process(es))")
        with Neighbours() as neighbours:
            sqlite_q = time_queries(uri, args.reps, args.profile)
        print(f"  ({neighbours.report()} while querying)")
        sqlite_pages = time_pages(uri, args.reps)
        results["sqlite"] = {"populate_s": pop_s, "queries": sqlite_q, "pages": sqlite_pages}
        for label, q in sqlite_q.items():
            print(_line(label, q) + f"   {_verdict(q)}")
        for label, p in sqlite_pages.items():
            print(_pages_line(label, p))

        if not args.no_postgres:
            with postgres() as server:
                sample_uri = server.new_database()
                version = postgres_version(sample_uri)
                per_run = api_rate(sample_uri, args.pg_api_runs, args.metrics, args.seed)
                pg_uri = server.new_database()
                copy_s = copy_store(uri, pg_uri)
                print(f"Forgeline PostgreSQL {version}: the Store API writes "
                      f"{per_run * 1000:.1f} ms/run here (one process, {args.pg_api_runs} runs; "
                      f"{per_run * args.runs:.0f} s for all {args.runs:,}, extrapolated), so "
                      f"the SQLite store's tables were copied in with COPY + ANALYZE "
                      f"({copy_s:.1f} s)")
                with Neighbours() as neighbours:
                    pg_q = time_queries(pg_uri, args.reps, args.profile)
                print(f"  ({neighbours.report()} while querying, the PostgreSQL server "
                      "included)")
                pg_pages = time_pages(pg_uri, args.reps)
            results["postgres"] = {"version": version, "api_ms_per_run": per_run * 1000,
                                   "copy_s": copy_s, "queries": pg_q, "pages": pg_pages}
            for label, q in pg_q.items():
                print(_line(label, q) + f"   {_verdict(q)}")
                if q["names"] != sqlite_q[label]["names"]:
                    print(f"  WARNING: PostgreSQL and SQLite returned different runs ({label})")
            for label, p in pg_pages.items():
                print(_pages_line(label, p))

        if not args.no_mlflow:
            mlflow_dir = tmp / "mlflow"
            mlflow_dir.mkdir()
            ref = run_mlflow(["search", "--dir", str(mlflow_dir), "--runs", str(args.runs),
                              "--metrics", str(args.metrics), "--reps", str(args.reps),
                              "--seed", str(args.seed), "--api-sample",
                              str(args.mlflow_api_runs)])
            if ref is not None:
                per_run = ref["api_s"] / ref["api_timed_runs"]
                print(f"MLflow {ref['mlflow']} SQLite reference: {ref['api_runs']} runs through "
                      f"create_run + log_batch ({per_run * 1000:.1f} ms/run: "
                      f"{per_run * args.runs:.0f} s for all {args.runs:,}, extrapolated), the "
                      f"other {ref['bulk_runs']:,} copied into MLflow's tables from the row "
                      f"MLflow wrote for an API run ({ref['bulk_s']:.1f} s)")
                results["mlflow"] = ref
                for label, q in ref["queries"].items():
                    ours = sqlite_q[label]
                    same = "same runs" if q["names"] == ours["names"] else "DIFFERENT runs"
                    print(_line(label, q) + f"   {same}; Forgeline is "
                          f"{ratio(q['median_ms'], ours['median_ms'])} faster (median)")
    for backend in ("sqlite", "postgres"):
        for q in results.get(backend, {}).get("queries", {}).values():
            q.pop("names")
    for q in results.get("mlflow", {}).get("queries", {}).values():
        q.pop("names")
    write_json(args.json, "search", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
