"""Figure 3: 8 processes logging into one store at once, on SQLite and PostgreSQL.

Each process opens the store, starts its run, then waits at a barrier; once all eight
are there, each logs 2,000 points call by call through ``ActiveRun.log_metric`` and ends
its run. The wall time runs from the barrier's release to the last ``end()``. Then every
point is checked: 2,000 per run through ``get_metric_history`` (16,000 in all, steps
0..1999 each), every run FINISHED, no error in any process.

Variants: the default flush size (1,000 points a write) and FORGELINE_METRIC_FLUSH_SIZE=100
(20 writes a process, so that the writers really contend for the database).
Reference, measured in the same run: one process logging the same 8 runs x 2,000 points
one run after the other into a fresh store of the same backend, same flush size.

    .venv/bin/python benchmarks/bench_concurrency.py [--processes 8] [--points 2000]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
from contextlib import ExitStack, suppress
from typing import Any

from _common import (
    Neighbours,
    check_quiet,
    median,
    postgres,
    postgres_version,
    print_machine,
    ratio,
    scratch_dir,
    sqlite_uri,
    write_json,
)


def _worker(index: int, uri: str, flush_size: int | None, points: int, barrier: Any,
            results: Any) -> None:
    if flush_size is not None:
        os.environ["FORGELINE_METRIC_FLUSH_SIZE"] = str(flush_size)
    out: dict[str, Any] = {"worker": index, "error": None, "run_id": None}
    try:
        import forgeline as fl

        client = fl.Client(uri)
        run = client.start_run(experiment="bench", name=f"worker-{index}")
        out["run_id"] = run.run_id
    except Exception:
        out["error"] = traceback.format_exc()
        barrier.abort()  # the others must not wait for a worker that will never come
        results.put(out)
        return
    try:
        barrier.wait(timeout=300)
    except threading.BrokenBarrierError:
        out["error"] = "another worker failed before the start"
        results.put(out)
        return
    out["start"] = time.monotonic()
    try:
        for i in range(points):
            run.log_metric("loss", i * 1e-4, step=i)
        run.end()
    except Exception:
        out["error"] = traceback.format_exc()
    out["end"] = time.monotonic()
    results.put(out)


def concurrent(uri: str, processes: int, points: int, flush_size: int | None) -> dict[str, Any]:
    """Run the workers; wall time, throughput, and what verification found."""
    import forgeline as fl
    from forgeline.store import close_stores, get_store

    get_store(uri).get_or_create_experiment("bench")  # migrate before the race
    close_stores()
    ctx = mp.get_context("spawn")  # no connection or heartbeat thread crosses a fork
    barrier = ctx.Barrier(processes + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(k, uri, flush_size, points, barrier, queue))
             for k in range(processes)]
    for p in procs:
        p.start()
    with suppress(threading.BrokenBarrierError):  # a worker could not start: see results
        barrier.wait(timeout=300)
    start = time.monotonic()
    outs = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [o["error"] for o in outs if o["error"]]
    ends = [o["end"] for o in outs if "end" in o]
    wall = max(ends, default=math.nan) - start
    per_worker = [o["end"] - o["start"] for o in outs if "end" in o] or [math.nan]

    client = fl.Client(uri)
    stored, bad_runs = 0, []
    for o in outs:
        if o["run_id"] is None:
            continue
        history = client.get_metric_history(o["run_id"], "loss")
        stored += len(history)
        status = client.get_run(o["run_id"]).status.value
        if [m.step for m in history] != list(range(points)) or status != "FINISHED":
            bad_runs.append(f"worker {o['worker']}: {len(history)} points, {status}")
    client.store.close()
    close_stores()
    total = processes * points
    return {"wall_s": wall, "points_per_s": total / wall, "stored": stored, "expected": total,
            "errors": errors, "bad_runs": bad_runs, "exit_codes": [p.exitcode for p in procs],
            "worker_median_s": median(per_worker), "worker_max_s": max(per_worker)}


def sequential(uri: str, processes: int, points: int, flush_size: int | None) -> float:
    """Seconds for one process to log the same runs one after the other (runs already
    started, as in :func:`concurrent`)."""
    import forgeline as fl
    from forgeline.config import load_settings
    from forgeline.store import close_stores

    client = fl.Client(uri, settings=load_settings(metric_flush_size=flush_size))
    client.start_run(experiment="bench", name="warmup").end()
    # Started before the clock, as the workers start theirs before the barrier.
    runs = [client.start_run(experiment="bench", name=f"seq-{k}") for k in range(processes)]
    start = time.perf_counter()
    for run in runs:
        for i in range(points):
            run.log_metric("loss", i * 1e-4, step=i)
        run.end()
    elapsed = time.perf_counter() - start
    client.store.close()
    close_stores()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--small-flush", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    print_machine()
    check_quiet()
    total = args.processes * args.points
    print(f"{args.processes} processes x {args.points:,} points call by call, started "
          f"together, into one store ({total:,} points)")
    results: dict[str, Any] = {"processes": args.processes, "points": args.points,
                               "variants": {}}
    failed = False
    flushes: list[int | None] = [None, args.small_flush]
    with scratch_dir("concurrency") as tmp, ExitStack() as stack:
        backends: list[tuple[str, Any]] = [("sqlite", None)]
        if not args.no_postgres:
            server = stack.enter_context(postgres())
            backends.append(("postgres", server))
            results["postgres_version"] = postgres_version(server.admin_uri)
        for backend, srv in backends:
            for flush in flushes:
                def fresh(tag: str, srv: Any = srv, backend: str = backend,
                          flush: int | None = flush) -> str:
                    if backend == "postgres":
                        return str(srv.new_database())
                    return sqlite_uri(tmp / f"{backend}-{flush}-{tag}.db")

                label = f"{backend}, flush size {flush or 'default (1000)'}"
                tries, seqs = [], []
                with Neighbours() as neighbours:
                    for r in range(args.repeat):  # each on a fresh store
                        tries.append(concurrent(fresh(f"conc{r}"), args.processes,
                                                args.points, flush))
                        seqs.append(sequential(fresh(f"seq{r}"), args.processes, args.points,
                                               flush))
                walls = [g["wall_s"] for g in tries]
                got = sorted(tries, key=lambda g: g["wall_s"])[len(tries) // 2]  # the median
                seq_s = median(seqs)
                got.update(sequential_s=seq_s, sequential_points_per_s=total / seq_s,
                           wall_all_s=walls, sequential_all_s=seqs)
                results["variants"][label] = got
                ok = all(not g["errors"] and not g["bad_runs"] and g["stored"] == total
                         and set(g["exit_codes"]) == {0} for g in tries)
                failed |= not ok
                server = " (the PostgreSQL server counts as other)" if srv else ""
                print(f"{label} ({neighbours.report()}{server}):")
                got["other_cpu"] = neighbours.other
                print(f"  {args.processes} processes at once: {got['wall_s']:6.2f} s wall, "
                      f"{got['points_per_s']:>9,.0f} points/s (median of {args.repeat}: "
                      f"{min(walls):.2f}..{max(walls):.2f} s); per process median "
                      f"{got['worker_median_s']:.2f} s, slowest {got['worker_max_s']:.2f} s")
                print(f"  verified, every repeat: {', '.join(str(g['stored']) for g in tries)} "
                      f"of {total:,} points stored, "
                      f"{sum(len(g['errors']) for g in tries)} errors, runs not FINISHED or "
                      f"incomplete: {sum(len(g['bad_runs']) for g in tries)}   "
                      f"{'OK' if ok else 'FAILED'}")
                print(f"  reference, 1 process one run after another: {seq_s:6.2f} s, "
                      f"{total / seq_s:>9,.0f} points/s; concurrent/sequential "
                      f"{ratio(got['points_per_s'], total / seq_s)}")
                for g in tries:
                    for error in g["errors"][:3]:
                        print("  error:", error.strip().splitlines()[-1])
                    for bad in g["bad_runs"][:3]:
                        print("  bad run:", bad)
    results["all_verified"] = not failed
    write_json(args.json, "concurrency", results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
