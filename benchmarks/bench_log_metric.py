"""Figure 1: call-by-call ``ActiveRun.log_metric`` throughput on SQLite, final flush included.

Target: at least 200,000 points/s for runs of 10,000 points and more. The clock starts at
the first ``log_metric`` call and stops when ``run.end()`` returns (the last flush and the
run's final status are written). Each size is repeated; the median repeat is reported.

References measured in the same run:
  (a) the ceiling: raw ``sqlite3`` ``executemany`` of as many 5-column rows
      (run_id, key, value, step, timestamp) into a plain table, WAL mode,
      synchronous=NORMAL (as the store uses), one transaction per 1,000 rows (the
      store's default flush size);
  (b) MLflow 3 on a SQLite backend, in .venv-bench: ``MlflowClient().log_metric`` call
      by call (a few hundred calls, extrapolated) and ``log_batch`` (1,000 points a call).

    .venv/bin/python benchmarks/bench_log_metric.py [--points 10000 100000] [--profile]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from _common import (
    Neighbours,
    check_quiet,
    cpu_index,
    median,
    print_machine,
    profile,
    ratio,
    run_mlflow,
    scratch_dir,
    sqlite_uri,
    write_json,
)

TARGET = 200_000.0  # points/s
BATCH = 1000


def forgeline_run(client: Any, n: int, keys: tuple[str, ...]) -> float:
    """Seconds to log ``n`` points call by call (cycling over ``keys``) and end the run."""
    run = client.start_run(experiment="bench", name=f"log-{n}")
    nkeys = len(keys)
    start = time.perf_counter()
    log = run.log_metric
    for i in range(n):
        log(keys[i % nkeys], i * 1e-6, step=i)
    run.end()
    elapsed = time.perf_counter() - start
    stored = sum(len(client.get_metric_history(run.run_id, k)) for k in keys)
    if stored != n:
        raise SystemExit(f"FAILED: {stored} of {n} points stored")
    return elapsed


def sqlite_ceiling(path: Path, n: int, prebuilt: bool) -> float:
    """Seconds for raw sqlite3 to store ``n`` rows in batches of BATCH, one commit each.

    ``prebuilt``: the rows exist before the clock starts (executemany alone); otherwise
    each row is built in the timed loop, one tuple and one clock read per point.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS metrics (run_id TEXT, key TEXT, value REAL, "
                 "step INTEGER, timestamp INTEGER)")
    run_id = uuid.uuid4().hex
    sql = "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)"
    now = time.time_ns() // 1_000_000
    rows = [(run_id, "loss", i * 1e-6, i, now) for i in range(n)] if prebuilt else []
    start = time.perf_counter()
    if prebuilt:
        for first in range(0, n, BATCH):
            conn.execute("BEGIN")
            conn.executemany(sql, rows[first:first + BATCH])
            conn.execute("COMMIT")
    else:
        batch: list[tuple[str, str, float, int, int]] = []
        for i in range(n):
            batch.append((run_id, "loss", i * 1e-6, i, time.time_ns() // 1_000_000))
            if len(batch) >= BATCH:
                conn.execute("BEGIN")
                conn.executemany(sql, batch)
                conn.execute("COMMIT")
                batch = []
        if batch:
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--max-other", type=float, default=0.15,
                        help="measure a repeat again when other processes used more than "
                             "this share of the CPUs during it")
    parser.add_argument("--mlflow-calls", type=int, default=500)
    parser.add_argument("--mlflow-batch-points", type=int, default=10_000)
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one run of the largest size")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import forgeline as fl
    from forgeline.store import close_stores

    print_machine()
    check_quiet()
    print(f"ActiveRun.log_metric call by call on SQLite, final flush included; median of "
          f"{args.repeat} repeats; target >= {TARGET:,.0f} points/s")
    results: dict[str, Any] = {"target": TARGET, "repeat": args.repeat, "sizes": {}}
    met = True
    with scratch_dir("log-metric") as tmp:
        client = fl.Client(sqlite_uri(tmp / "store.db"))
        forgeline_run(client, 1000, ("warmup",))  # first-call costs: compile caches, imports
        keysets = {"1 key": ("loss",), "10 keys": tuple(f"m{k}" for k in range(10))}
        for n in args.points:
            # Interleaved, so that Forgeline and its ceiling share whatever the host does.
            samples: dict[str, list[float]] = {k: [] for k in (*keysets, "ceiling", "built",
                                                                "cpu_ms")}
            redone = 0
            with Neighbours() as neighbours:
                done = 0
                while done < args.repeat:
                    with Neighbours() as during:
                        got = {label: n / forgeline_run(client, n, keys)
                               for label, keys in keysets.items()}
                        got["ceiling"] = n / sqlite_ceiling(tmp / "raw.db", n, True)
                        got["built"] = n / sqlite_ceiling(tmp / "raw.db", n, False)
                        got["cpu_ms"] = cpu_index()
                    # On 2 CPUs another process halves a repeat: measure it again (3 tries).
                    if during.other > args.max_other and redone < 3 * args.repeat:
                        redone += 1
                        time.sleep(2)
                        continue
                    for key, value in got.items():
                        samples[key].append(value)
                    done += 1
            ceiling = median(samples["ceiling"])
            row: dict[str, Any] = {"samples": samples, "other_cpu": neighbours.other,
                                   "redone": redone,
                                   "sqlite_executemany": ceiling,
                                   "sqlite_rows_built_in_loop": median(samples["built"])}
            print(f"{n:>9,} points ({neighbours.report()}; {redone} repeats measured "
                  f"again because other processes took > {args.max_other:.0%} of the CPUs "
                  f"during them; host speed check {min(samples['cpu_ms']):.0f}.."
                  f"{max(samples['cpu_ms']):.0f} ms):")
            for label in keysets:
                row[label] = median(samples[label])
                row[f"{label} ratio"] = median([a / b for a, b in zip(samples[label],
                                                                       samples["ceiling"],
                                                                       strict=True)])
                ok = row[label] >= TARGET
                met &= ok
                print(f"  Forgeline log_metric ({label:<7}) {row[label]:>11,.0f} points/s   "
                      f"{'MET   ' if ok else 'MISSED'}   {row[f'{label} ratio']:.2f}x the "
                      f"sqlite3 ceiling   (repeats {min(samples[label]):,.0f}.."
                      f"{max(samples[label]):,.0f})")
            print(f"  (a) sqlite3 executemany ceiling   {ceiling:>11,.0f} rows/s   (repeats "
                  f"{min(samples['ceiling']):,.0f}..{max(samples['ceiling']):,.0f}; rows "
                  f"built in the loop too: {row['sqlite_rows_built_in_loop']:,.0f} rows/s)")
            results["sizes"][str(n)] = row
        if args.profile:
            n = max(args.points)
            profile(lambda: forgeline_run(client, n, ("loss",)), f"log_metric x {n:,}")
        client.store.close()
        close_stores()

        if not args.no_mlflow:
            mlflow_dir = tmp / "mlflow"
            mlflow_dir.mkdir()
            ref = run_mlflow(["log_metric", "--dir", str(mlflow_dir), "--calls",
                              str(args.mlflow_calls), "--batch-points",
                              str(args.mlflow_batch_points)])
            if ref is not None:
                calls = ref["calls"] / ref["calls_s"]
                batch = ref["batch_points"] / ref["batch_s"]
                results["mlflow"] = {**ref, "log_metric_per_s": calls, "log_batch_per_s": batch}
                ours = results["sizes"][str(max(args.points))]["1 key"]
                print(f"(b) MLflow {ref['mlflow']} on SQLite:")
                print(f"  MlflowClient.log_metric call by call {calls:>9,.0f} points/s   "
                      f"({ref['calls']} calls in {ref['calls_s']:.2f} s; "
                      f"{max(args.points):,} points would take "
                      f"{max(args.points) / calls:,.0f} s, extrapolated)   "
                      f"Forgeline is {ratio(ours, calls)} faster")
                print(f"  MlflowClient.log_batch (1,000/call)  {batch:>9,.0f} points/s   "
                      f"({ref['batch_points']:,} points in {ref['batch_s']:.2f} s)   "
                      f"Forgeline call by call is {ratio(ours, batch)} faster")
    results["target_met"] = met
    print(f"target {TARGET:,.0f} points/s: "
          f"{'MET at every size' if met else 'MISSED at one size or more (see above)'}")
    write_json(args.json, "log_metric", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
