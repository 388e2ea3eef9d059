"""Soak: ``forgeline serve`` at saturation for 10 minutes, no 5xx and memory growth under
10% (issue 4). A benchmark, not a test: it takes the machine for ``--minutes``.

The model and the server are the serving benchmark's (``bench_serve.py``): a 100-tree
HistGradientBoostingClassifier on 20 numeric features, ``forgeline serve bench-hgb@champion
--workers 2`` with the default options (every prediction kept in the prediction log). After
an unrecorded warm-up, wrk runs ``--minutes`` slices of ``--slice`` seconds back to back
(``wrk -t2 -c32 --latency``, one row per POST, a Lua script counting the answers' status
classes). After each slice the resident memory (RSS) of the server's processes (the
parent and each worker) is read from /proc.

Pass criteria, printed at the end:

- no 5xx answer and no socket error (connect, read, write, timeout) in any slice;
- the server's total RSS after the last slice at most 10% above its RSS after the first;
- the server still answers the benchmark row correctly afterwards.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 10] [--slice 60] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    Server,
    build_serve_model,
    check_quiet,
    free_port,
    print_machine,
    rss_mib,
    run_wrk,
    scratch_dir,
    tree_cpu_s,
    tree_rss_mib,
    write_json,
    wrk_script,
)
from bench_serve import bodies, check_answer, the_row

MAX_GROWTH = 0.10  # RSS after the last slice / after the first, minus 1


def folder_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20 if (
        path.exists()) else 0.0


def unrecorded(metrics_url: str) -> dict[str, float]:
    """What the server let go under load, from its /metrics: prediction-log rows dropped
    and model calls left out of the batch statistics (both by design, and counted)."""
    import urllib.request

    with urllib.request.urlopen(metrics_url, timeout=30) as answer:
        text = answer.read().decode()
    wanted = {"forgeline_prediction_log_dropped_total": "log rows dropped",
              "forgeline_batch_stats_skipped_total": "batch statistics skipped"}
    found = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[wanted[name]] += float(value)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--slice", type=float, default=60.0,
                        help="seconds per wrk run (adjusted to divide the soak evenly)")
    parser.add_argument("--warmup", type=float, default=20.0, help="unrecorded seconds first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    slices = max(2, round(args.minutes * 60 / args.slice))
    args.slice = args.minutes * 60 / slices  # the soak lasts --minutes, in 2 slices at least
    print_machine()
    busy = check_quiet()
    results: dict[str, Any] = {"minutes": args.minutes, "slice_s": args.slice,
                               "connections": args.connections, "workers": args.workers,
                               "max_growth": MAX_GROWTH, "cpu_busy_before": busy,
                               "slices": []}
    import pandas as pd

    with scratch_dir("soak") as folder:
        model = build_serve_model(folder / "home")
        row = the_row()
        expected = float(model.pipeline.predict_proba(pd.DataFrame([row]))[0, 1])
        body = bodies(row)["forgeline"]
        port = free_port()
        forgeline = str(Path(sys.executable).with_name("forgeline"))
        command = [forgeline, "serve", model.ref, "--workers", str(args.workers), "--host",
                   "127.0.0.1", "--port", str(port)]
        script = wrk_script(folder, "soak", body, count_statuses=True)
        with Server("forgeline", command, f"http://127.0.0.1:{port}/predict", body,
                    folder / "server.log", env=model.env()) as server:
            ok, detail = check_answer("forgeline", server.wait_ready(), expected)
            print(f"forgeline serve ({args.workers} workers) answers after "
                  f"{server.startup_s:.1f} s: {detail}; idle RSS "
                  f"{sum(tree_rss_mib(server.pid).values()):,.0f} MiB")
            if args.warmup > 0:
                run_wrk(server.url, script, args.warmup, args.connections)
            print(f"{slices} slices of {args.slice:g} s at {args.connections} connections:")
            started = time.monotonic()
            for i in range(slices):
                cpu0 = tree_cpu_s(server.pid)
                run = run_wrk(server.url, script, args.slice, args.connections)
                rss = tree_rss_mib(server.pid)
                run.update(slice=i + 1, at_s=time.monotonic() - started,
                           rss_mib=sum(rss.values()),
                           rss_by_process={str(p): v for p, v in rss.items()},
                           hwm_mib=sum(rss_mib(p, "VmHWM") for p in rss),
                           server_cpu_s=tree_cpu_s(server.pid) - cpu0,
                           predictions_mib=folder_mib(model.home / "predictions"))
                results["slices"].append(run)
                status = run.get("status", {})
                print(f"  {i + 1:>3}  {run['rps']:>8,.0f} req/s  p99 {run['p99_ms']:7.2f} ms  "
                      f"5xx {status.get('5xx', '?')}  4xx {status.get('4xx', '?')}  "
                      f"socket errors {run['errors']}  server RSS {run['rss_mib']:,.0f} MiB "
                      f"({len(rss)} processes)  prediction log "
                      f"{run['predictions_mib']:,.0f} MiB", flush=True)
                if server.proc is not None and server.proc.poll() is not None:
                    print(f"the server exited ({server.proc.returncode}) during slice {i + 1}")
                    break
            alive = server.proc is not None and server.proc.poll() is None
            after_ok = False
            if alive:
                status, answer = server.post()
                after_ok = status == 200 and check_answer("forgeline", json.loads(answer),
                                                          expected)[0]
                results["unrecorded"] = unrecorded(f"http://127.0.0.1:{port}/metrics")
    runs = results["slices"]
    first, last = runs[0], runs[-1]
    growth = last["rss_mib"] / first["rss_mib"] - 1
    fivexx = sum(r.get("status", {}).get("5xx", 0) for r in runs)
    errors = sum(r["errors"] for r in runs)
    non_2xx = sum(r["non_2xx"] for r in runs)
    checks = {
        "no 5xx": fivexx == 0,
        "no socket errors": errors == 0,
        f"memory growth under {MAX_GROWTH:.0%}": growth < MAX_GROWTH,
        "answers correctly afterwards": alive and after_ok,
    }
    results.update(growth=growth, total_5xx=fivexx, total_socket_errors=errors,
                   total_non_2xx=non_2xx, alive=alive, checks=checks,
                   passed=all(checks.values()),
                   requests=sum(r["requests"] for r in runs))
    print(f"\n{results['requests']:,} requests over {len(runs)} slices; non-2xx {non_2xx}, "
          f"5xx {fivexx}, socket errors {errors}")
    if "unrecorded" in results:
        print("under load, by design and counted: " + ", ".join(
            f"{name} {value:,.0f}" for name, value in results["unrecorded"].items()))
    print(f"server RSS: {first['rss_mib']:,.0f} MiB after slice 1 -> {last['rss_mib']:,.0f} "
          f"MiB after slice {last['slice']} ({growth:+.1%}); req/s "
          f"{first['rps']:,.0f} -> {last['rps']:,.0f}")
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"soak: {'PASSED' if results['passed'] else 'FAILED'}")
    (BENCH_DIR / "out").mkdir(exist_ok=True)
    write_json(args.json or str(BENCH_DIR / "out" / "bench_soak.json"), "bench_soak", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
