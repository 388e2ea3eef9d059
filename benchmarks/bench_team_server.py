"""Issue 12: the team server (``forgeline server``) against ``mlflow server``, on loopback.

Every server is a whole process started from its command line, on a SQLite store in a
fresh folder; every client is a separate process (or this one), talking HTTP.

1. **The MLflow client against both servers.** The same script, run by .venv-bench's
   interpreter (the real ``mlflow`` client): 10 runs x 10 params x 5 metrics x 100 steps,
   logged call by call (``mlflow.log_param``, ``mlflow.log_metric(step=...)``), then
   ``mlflow.search_runs`` with a filter and an order_by. Against ``forgeline server
   --no-auth`` (.venv) and ``mlflow server --backend-store-uri sqlite:///...
   --artifacts-destination DIR`` (.venv-bench), the same number of workers each.
   Figures: metric points per second of the logging phase (first ``start_run`` to last
   ``end_run``; the params are in that time too), and the median of the ``search_runs``
   calls. Every point is read back (``get_metric_history``) and both servers must
   answer the search with the same runs in the same order. Targets: >= 10x MLflow's
   points/s, search < 100 ms.
2. **Forgeline's own client over HTTP** (``fl.Client("http://...")``): call-by-call
   ``ActiveRun.log_metric`` (buffered, sent in batches), the clock from the first call to
   ``run.end()`` returning (the final flush included), median of the repeats; target
   >= 100,000 points/s. Then ``Client.search_runs`` over 10,000 runs x 20 metrics (written
   into the server's SQLite file through the Store API before the server starts: not
   timed) with a filter on a metric and a param and ``order_by`` a metric, median round
   trip; target < 150 ms.
3. **32 concurrent clients** (processes, Forgeline's client) logging call by call into
   one server for a fixed time (60 s; 10 s with --quick): points sent vs points stored
   (read back, every step), HTTP answers by status class (counted in each client's
   connection pool: none may be 5xx), and the server's RSS (VmRSS of its process tree,
   from /proc) sampled every second: first, last and highest sample while logging.

    .venv/bin/python benchmarks/bench_team_server.py [--quick] [--workers 1] [--skip-mlflow]

Prints a table and writes JSON to benchmarks/out/bench_team_server.json
(``bench_team_server_quick.json`` with --quick) and the Markdown of BENCHMARKS.md's
section beside it (``.md``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import re
import subprocess
import sys
import threading
import time
import traceback
from contextlib import suppress
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    BENCH_PYTHON,
    BENCH_VENV,
    ROOT,
    SETUP_HINT,
    Server,
    _proc_stat,
    check_quiet,
    free_port,
    home_env,
    machine,
    median,
    percentile,
    print_machine,
    process_tree,
    scratch_dir,
    search_filter,
    search_order,
    search_run,
    sqlite_uri,
    tree_rss_mib,
)

FORGELINE = ROOT / ".venv" / "bin" / "forgeline"
MLFLOW = BENCH_VENV / "bin" / "mlflow"
OUT = BENCH_DIR / "out"

TARGET_RATIO = 10.0  # x MLflow's points/s, MLflow client against both servers
TARGET_MLFLOW_SEARCH_MS = 100.0
TARGET_CLIENT_POINTS = 100_000.0  # points/s, Forgeline's client over HTTP
TARGET_CLIENT_SEARCH_MS = 150.0
TARGET_RSS_GROWTH = 0.10  # "flat": under 10% from the first to the last sample

# The MLflow-client script's search (MLflow's grammar; both servers get the same).
MLFLOW_FILTER = "metrics.m0 > 0.2 and params.p0 = '1'"
MLFLOW_ORDER = ["metrics.m1 DESC"]
READY_BODY = b'{"max_results": 1}'  # POST .../experiments/search: both servers answer it


# -- 1. the MLflow client's script (run by .venv-bench's python: stdlib and mlflow only) ----
def mlflow_client_main(argv: list[str]) -> int:
    """``bench_team_server.py _mlflow_client --url URL ...``: the script, one JSON line."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--params", type=int, default=10)
    p.add_argument("--metrics", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--searches", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(a.url)
    client = MlflowClient(a.url)
    # Warm-up, in another experiment: the connection, the server's first-call costs.
    mlflow.set_experiment("warmup")
    with mlflow.start_run(run_name="warmup"):
        mlflow.log_param("p", "v")
        for step in range(5):
            mlflow.log_metric("m", 0.5, step=step)
    experiment = mlflow.set_experiment("team-bench")

    calls: list[float] = []
    print("START", flush=True)
    sys.stdin.readline()
    cpu = time.process_time()
    start = time.perf_counter()
    run_ids = []
    for r in range(a.runs):
        rng = random.Random(a.seed * 1000 + r)
        with mlflow.start_run(run_name=f"run-{r:02d}") as run:
            run_ids.append(run.info.run_id)
            for k in range(a.params):
                mlflow.log_param(f"p{k}", str((r + k) % 2))
            for step in range(a.steps):
                for m in range(a.metrics):
                    t = time.perf_counter()
                    mlflow.log_metric(f"m{m}", rng.random(), step=step)
                    calls.append(time.perf_counter() - t)
    log_s = time.perf_counter() - start
    cpu = time.process_time() - cpu
    print("LOGGED", flush=True)
    sys.stdin.readline()

    stored, bad = 0, []
    for run_id in run_ids:
        for m in range(a.metrics):
            steps = sorted(x.step for x in client.get_metric_history(run_id, f"m{m}"))
            stored += len(steps)
            if steps != list(range(a.steps)):
                bad.append(f"{run_id} m{m}: {len(steps)} points")
        got = client.get_run(run_id).data.params
        if len(got) != a.params:
            bad.append(f"{run_id}: {len(got)} params")

    def fluent() -> list[str]:
        frame = mlflow.search_runs(experiment_ids=[experiment.experiment_id],
                                   filter_string=MLFLOW_FILTER, order_by=MLFLOW_ORDER)
        return list(frame["tags.mlflow.runName"])

    def raw() -> list[str]:
        found = client.search_runs([experiment.experiment_id], MLFLOW_FILTER,
                                   order_by=MLFLOW_ORDER, max_results=100)
        return [r.info.run_name for r in found]

    timings: dict[str, list[float]] = {"fluent": [], "client": []}
    names: dict[str, list[str]] = {}
    for label, fn in (("fluent", fluent), ("client", raw)):
        names[label] = fn()  # warm-up
        for _ in range(a.searches):
            t = time.perf_counter()
            fn()
            timings[label].append(time.perf_counter() - t)
    points = a.runs * a.metrics * a.steps
    print(json.dumps({
        "mlflow": mlflow.__version__, "runs": a.runs, "params": a.params,
        "metrics": a.metrics, "steps": a.steps, "points": points, "log_s": log_s,
        "client_cpu_s": cpu,
        "points_per_s": points / log_s, "call_median_ms": median(calls) * 1000,
        "call_p99_ms": percentile(calls, 99) * 1000, "stored": stored, "bad": bad,
        "search_median_ms": median(timings["fluent"]) * 1000,
        "search_p95_ms": percentile(timings["fluent"], 95) * 1000,
        "search_client_median_ms": median(timings["client"]) * 1000,
        "search_names": names["fluent"], "search_client_names": names["client"],
        "filter": MLFLOW_FILTER, "order_by": MLFLOW_ORDER}))
    return 0


def tree_cpu_all(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its live descendants, and by every child
    they reaped (utime, stime, cutime, cstime)."""
    total = 0
    for p in process_tree(pid):
        with suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


class Others:
    """The share of the CPUs used by processes that are not this one or its descendants
    (live or reaped), and the hypervisor's steal time, between ``start()`` and ``stop()``.

    Unlike ``Neighbours``, it counts live descendants as ours: call ``stop()`` while the
    servers still run (a server's workers may be reaped by init once it stops, and their
    CPU time would otherwise show as other processes')."""

    def start(self) -> Others:
        self._stat, self._ours, self._t = _proc_stat(), self._our_cpu(), time.monotonic()
        return self

    @staticmethod
    def _our_cpu() -> float:
        return tree_cpu_all(os.getpid())

    def stop(self) -> Others:
        stat, ours, wall = _proc_stat(), self._our_cpu(), time.monotonic() - self._t
        cpus, ticks = os.cpu_count() or 1, os.sysconf("SC_CLK_TCK")
        self.other = self.steal = 0.0
        if stat and self._stat:
            busy = ((stat[0] - stat[1]) - (self._stat[0] - self._stat[1])) / ticks
            self.other = max(0.0, busy - (ours - self._ours)) / (wall * cpus)
            self.steal = (stat[2] - self._stat[2]) / ticks / (wall * cpus)
        return self

    def report(self) -> str:
        return f"other processes used {self.other:.0%} of the CPUs, steal {self.steal:.0%}"


# -- servers ---------------------------------------------------------------------------------
def forgeline_server(folder: Path, store_uri: str, workers: int) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGELINE_", "MLFLOW_"))}
    env.update(FORGELINE_HOME=str(folder / "home"), PYTHONWARNINGS="ignore")
    command = [str(FORGELINE), "server", "--store", store_uri, "--artifacts",
               str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-auth"]
    server = Server("forgeline server", command, f"{url}/api/2.0/mlflow/experiments/search",
                    READY_BODY, folder / "forgeline-server.log", env=env, cwd=folder)
    server.base_url = url  # type: ignore[attr-defined]
    return server


def mlflow_server(folder: Path, workers: int) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGELINE_", "MLFLOW_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONWARNINGS="ignore")
    command = [str(MLFLOW), "server", "--backend-store-uri", sqlite_uri(folder / "mlflow.db"),
               "--artifacts-destination", str(folder / "mlartifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    server = Server("mlflow server", command, f"{url}/api/2.0/mlflow/experiments/search",
                    READY_BODY, folder / "mlflow-server.log", env=env, cwd=folder)
    server.base_url = url  # type: ignore[attr-defined]
    return server


def server_cpu_s(server: Server) -> float:
    return tree_cpu_all(server.pid)


def server_problems(server: Server) -> list[str]:
    """Lines of the server's log that tell of a failure (tracebacks, 5xx, errors)."""
    server._out.flush()
    text = server.log.read_text(errors="replace")
    return [line for line in text.splitlines()
            if re.search(r"Traceback|Internal Server Error|\bERROR\b|\b5\d\d\b", line)][:20]


def part_mlflow_client(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    print(f"\n== 1. the MLflow client's script: {args.runs} runs x {args.params} params x "
          f"{args.metrics} metrics x {args.steps} steps, call by call, then search_runs "
          f"({args.workers} worker(s) per server) ==", flush=True)
    out: dict[str, Any] = {}
    if not BENCH_PYTHON.is_file() or not MLFLOW.is_file():
        print(f"Part 1 skipped: it needs {BENCH_VENV} (the mlflow client and server); "
              f"{SETUP_HINT}.")
        return {"skipped": "no .venv-bench"}
    for name in ("forgeline",) if args.skip_mlflow else ("forgeline", "mlflow"):
        folder = tmp / f"p1-{name}"
        folder.mkdir()
        server = (forgeline_server(folder, sqlite_uri(folder / "forgeline.db"), args.workers)
                  if name == "forgeline" else mlflow_server(folder, args.workers))
        with server:
            server.wait_ready()
            command = [str(BENCH_PYTHON), str(Path(__file__).resolve()), "_mlflow_client",
                       "--url", server.base_url, "--runs", str(args.runs),  # type: ignore
                       "--params", str(args.params), "--metrics", str(args.metrics),
                       "--steps", str(args.steps), "--searches", str(args.searches)]
            env = {**{k: v for k, v in os.environ.items()
                      if not k.startswith(("FORGELINE_", "MLFLOW_"))},
                   "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                   "PYTHONWARNINGS": "ignore"}
            with open(folder / "client.err", "w+") as err:
                proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=err, text=True, env=env, cwd=folder)
                assert proc.stdin is not None and proc.stdout is not None
                # The client says START before its logging phase and LOGGED after it, and
                # waits for a line each time: the server's CPU is read at both points.
                marks: dict[str, tuple[float, Others]] = {}
                for line in proc.stdout:
                    if line.strip() in ("START", "LOGGED"):
                        marks[line.strip()] = (server_cpu_s(server), Others().start()
                                               if line.strip() == "START" else
                                               marks["START"][1].stop())
                        proc.stdin.write("\n")
                        proc.stdin.flush()
                        if line.strip() == "LOGGED":
                            break
                rest = proc.stdout.read()
                proc.wait(timeout=3600)
                err.seek(0)
                stderr = err.read()
            problems = server_problems(server)
        if proc.returncode != 0 or "LOGGED" not in marks:
            print(f"{name}: the MLflow client failed (exit {proc.returncode}):\n"
                  + "\n".join(stderr.strip().splitlines()[-20:]))
            out[name] = {"failed": stderr[-3000:], "server_log": problems}
            continue
        got = json.loads(rest.strip().splitlines()[-1])
        neighbours = marks["LOGGED"][1]
        calls = got["points"] + got["params"] * got["runs"]
        got.update(startup_s=server.startup_s, server_log=problems, other_cpu=neighbours.other,
                   steal=neighbours.steal,
                   server_cpu_s=marks["LOGGED"][0] - marks["START"][0],
                   log_calls=calls)
        got["server_cpu_per_call_ms"] = got["server_cpu_s"] / calls * 1000
        got["client_cpu_per_call_ms"] = got["client_cpu_s"] / calls * 1000
        out[name] = got
        print(f"{server.name} (started in {server.startup_s:.1f} s; logging phase: "
              f"{neighbours.report()}):")
        print(f"  logging: {got['points']:,} points in {got['log_s']:.2f} s = "
              f"{got['points_per_s']:,.0f} points/s (log_metric call median "
              f"{got['call_median_ms']:.2f} ms, p99 {got['call_p99_ms']:.2f} ms); "
              f"read back {got['stored']:,}/{got['points']:,}"
              + (f", PROBLEMS: {got['bad'][:3]}" if got["bad"] else ""))
        print(f"  CPU per logging call ({calls:,} calls): server "
              f"{got['server_cpu_per_call_ms']:.2f} ms, the mlflow client "
              f"{got['client_cpu_per_call_ms']:.2f} ms; wall {got['log_s'] / calls * 1000:.2f} "
              "ms")
        print(f"  mlflow.search_runs: median {got['search_median_ms']:.1f} ms, p95 "
              f"{got['search_p95_ms']:.1f} ms (MlflowClient.search_runs median "
              f"{got['search_client_median_ms']:.1f} ms); {len(got['search_names'])} runs: "
              f"{got['search_names']}")
        for line in problems[:5]:
            print("  server log:", line)
    f, m = out.get("forgeline", {}), out.get("mlflow", {})
    if "points_per_s" in f and "points_per_s" in m:
        out["ratio"] = f["points_per_s"] / m["points_per_s"]
        out["search_ratio"] = m["search_median_ms"] / f["search_median_ms"]
        out["same_search_answer"] = (f["search_names"] == m["search_names"]
                                     and f["search_client_names"] == m["search_client_names"])
        print(f"forgeline / mlflow: {out['ratio']:,.1f}x the points/s, search "
              f"{out['search_ratio']:,.1f}x faster; same search answer: "
              f"{out['same_search_answer']}")
    if "points_per_s" in f:
        out["search_met"] = f["search_median_ms"] < TARGET_MLFLOW_SEARCH_MS
        out["verified"] = not f["bad"] and f["stored"] == f["points"] and (
            "mlflow" not in out or out.get("same_search_answer", False))
    if "ratio" in out:
        out["ratio_met"] = out["ratio"] >= TARGET_RATIO
    return out


# -- 2. Forgeline's client over HTTP ---------------------------------------------------------
def populate(uri: str, n_runs: int, n_metrics: int, seed: int) -> float:
    """``n_runs`` runs of bench_search's data set, written through the Store API."""
    from forgeline.store import close_stores, get_store

    start = time.perf_counter()
    store = get_store(uri)
    exp = store.get_or_create_experiment("search").experiment_id
    for i in range(n_runs):
        name, start_time, params, metrics = search_run(i, n_metrics, seed)
        run = store.create_run(exp, name, start_time)
        store.log_batch(run.run_id, metrics=metrics, params=params)
    store.close()
    close_stores()
    return time.perf_counter() - start


def log_points(client: Any, n: int, keys: tuple[str, ...], name: str) -> tuple[float, str]:
    run = client.start_run(experiment="log", name=name)
    n_keys = len(keys)
    start = time.perf_counter()
    for i in range(n):
        run.log_metric(keys[i % n_keys], i * 1e-6, step=i // n_keys)
    run.end()
    return time.perf_counter() - start, run.run_id


def part_client(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import forgeline as fl
    from forgeline.store import get_store

    print(f"\n== 2. Forgeline's client over HTTP: {args.points:,} points call by call "
          f"(x{args.repeat}); search_runs over {args.search_runs:,} runs x "
          f"{args.search_metrics} metrics ({args.workers} worker(s)) ==", flush=True)
    folder = tmp / "p2"
    folder.mkdir()
    db_uri = sqlite_uri(folder / "forgeline.db")
    populate_s = populate(db_uri, args.search_runs, args.search_metrics, seed=0)
    print(f"  {args.search_runs:,} runs written through the Store API into the SQLite file in "
          f"{populate_s:.1f} s (not timed below)")
    out: dict[str, Any] = {"points": args.points, "repeat": args.repeat,
                           "search_runs": args.search_runs,
                           "search_metrics": args.search_metrics, "populate_s": populate_s}
    server = forgeline_server(folder, db_uri, args.workers)
    with home_env(folder / "client-home"), server:
        server.wait_ready()
        neighbours = Others().start()
        url = server.base_url  # type: ignore[attr-defined]
        client = fl.Client(url)
        log_points(client, 2000, ("warmup",), "warmup")
        for label, keys in (("1 key", ("loss",)),
                            ("10 keys", tuple(f"m{j}" for j in range(10)))):
            times, bad = [], []
            server_cpu = client_cpu = 0.0
            for r in range(args.repeat):
                cpu0, own0 = server_cpu_s(server), time.process_time()
                elapsed, run_id = log_points(client, args.points, keys, f"{label}-{r}")
                server_cpu += server_cpu_s(server) - cpu0
                client_cpu += time.process_time() - own0
                times.append(elapsed)
                stored = sum(len(client.get_metric_history(run_id, k)) for k in keys)
                if stored != args.points:
                    bad.append(f"repeat {r}: {stored} of {args.points} stored")
            med = median(times)
            total = args.points * args.repeat
            out[label] = {"median_s": med, "points_per_s": args.points / med,
                          "all_s": times, "bad": bad,
                          "best_points_per_s": args.points / min(times),
                          "server_cpu_us_per_point": server_cpu / total * 1e6,
                          "client_cpu_us_per_point": client_cpu / total * 1e6,
                          "wall_us_per_point": sum(times) / total * 1e6}
            print(f"  log_metric, {label}: {args.points / med:>9,.0f} points/s median "
                  f"({min(times):.3f}..{max(times):.3f} s for {args.points:,} points, "
                  f"run.end() included); every point read back: {bad or 'yes'}")
            print(f"    per point: wall {out[label]['wall_us_per_point']:.1f} us, client "
                  f"CPU {out[label]['client_cpu_us_per_point']:.1f} us, server CPU "
                  f"{out[label]['server_cpu_us_per_point']:.1f} us")
        # search
        store = client.store
        exp_id = client.get_experiment("search").experiment_id
        local = get_store(db_uri)  # the file itself, to check the server's answer
        queries = {"filter": (search_filter(), None),
                   "filter + order": (search_filter(), [search_order()])}
        out["queries"] = {}
        for label, (flt, order) in queries.items():
            expected = [r.run_id for r in local.search_runs([exp_id], flt, order, 100)]
            got = [r.run_id for r in client.search_runs("search", flt, order, 100)]
            same = got == expected if order else sorted(got) == sorted(expected)
            rounds, raws = [], []
            for _ in range(args.searches):
                t = time.perf_counter()
                client.search_runs("search", flt, order, 100)
                rounds.append(time.perf_counter() - t)
                t = time.perf_counter()
                store.search_runs([exp_id], flt, order, 100)
                raws.append(time.perf_counter() - t)
            t_local = []
            for _ in range(max(3, args.searches // 2)):
                t = time.perf_counter()
                local.search_runs([exp_id], flt, order, 100)
                t_local.append(time.perf_counter() - t)
            q = {"filter": flt, "order_by": order, "runs": len(got), "same_as_store": same,
                 "median_ms": median(rounds) * 1000,
                 "p95_ms": percentile(rounds, 95) * 1000,
                 "request_median_ms": median(raws) * 1000,
                 "in_process_median_ms": median(t_local) * 1000}
            out["queries"][label] = q
            print(f"  search_runs {label:<15} round trip median {q['median_ms']:6.1f} ms, "
                  f"p95 {q['p95_ms']:6.1f} ms (the search request alone "
                  f"{q['request_median_ms']:.1f} ms; the same query in-process on the "
                  f"file {q['in_process_median_ms']:.1f} ms); {len(got)} runs, same as the "
                  f"store's: {same}")
        local.close()
        client.store.close()
        neighbours.stop()
        problems = server_problems(server)
    out.update(other_cpu=neighbours.other, steal=neighbours.steal, server_log=problems)
    print(f"  ({neighbours.report()})")
    for line in problems[:5]:
        print("  server log:", line)
    out["log_met"] = out["1 key"]["points_per_s"] >= TARGET_CLIENT_POINTS
    out["search_met"] = max(q["median_ms"] for q in out["queries"].values()) < \
        TARGET_CLIENT_SEARCH_MS
    out["verified"] = not out["1 key"]["bad"] and not out["10 keys"]["bad"] and all(
        q["same_as_store"] for q in out["queries"].values())
    return out


# -- 3. 32 concurrent clients ----------------------------------------------------------------
KEYS = ("loss", "acc")


def _worker(index: int, url: str, home: str, duration: float, barrier: Any,
            results: Any) -> None:
    os.environ["FORGELINE_HOME"] = home
    out: dict[str, Any] = {"worker": index, "error": None, "run_id": None, "steps": 0,
                           "statuses": {}, "non_2xx": [], "failed_attempts": []}
    statuses: dict[str, int] = {}

    def count(response: Any) -> None:
        kind = f"{response.status_code // 100}xx"
        statuses[kind] = statuses.get(kind, 0) + 1
        if response.status_code >= 400 and len(out["non_2xx"]) < 5:
            out["non_2xx"].append(f"{response.request.method} {response.request.url.path} "
                                  f"{response.status_code}")

    def sending(request: Any) -> None:  # requests sent - answers = attempts that failed
        statuses["sent"] = statuses.get("sent", 0) + 1

    try:
        import forgeline as fl

        client = fl.Client(url)
        http = client.store.http.client
        http.event_hooks["response"].append(count)
        http.event_hooks["request"].append(sending)
        send = http._transport.handle_request

        def handle(request: Any) -> Any:  # attempts that got no answer, and why
            try:
                return send(request)
            except Exception as e:
                out["failed_attempts"].append(f"{request.method} {request.url.path}: "
                                              f"{type(e).__name__}: {e}"[:200])
                raise

        http._transport.handle_request = handle
        run = client.start_run(experiment="concurrent", name=f"client-{index:02d}")
        out["run_id"] = run.run_id
    except Exception:
        out["error"] = traceback.format_exc()
        barrier.abort()
        results.put(out)
        return
    try:
        barrier.wait(timeout=600)
    except threading.BrokenBarrierError:
        out["error"] = "another worker failed before the start"
        results.put(out)
        return
    out["start"] = time.monotonic()
    deadline = out["start"] + duration
    step = 0
    try:
        while time.monotonic() < deadline:
            for _ in range(50):
                for key in KEYS:
                    run.log_metric(key, step * 1e-6, step=step)
                step += 1
        out["steps"] = step
        run.end()
    except Exception:
        out["steps"] = step
        out["error"] = traceback.format_exc()
    out["end"] = time.monotonic()
    out["statuses"] = statuses
    results.put(out)


class RssSampler(threading.Thread):
    """The server's process-tree RSS (MiB) once a second, with the time of each sample."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append((time.monotonic(), sum(tree_rss_mib(self.pid).values())))
            self.halt.wait(1.0)


def part_concurrent(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import forgeline as fl

    print(f"\n== 3. {args.clients} concurrent clients (processes) logging for "
          f"{args.duration:g} s into one forgeline server ({args.workers} worker(s)) ==",
          flush=True)
    folder = tmp / "p3"
    folder.mkdir()
    server = forgeline_server(folder, sqlite_uri(folder / "forgeline.db"), args.workers)
    home = str(folder / "client-home")
    with server:
        server.wait_ready()
        url = server.base_url  # type: ignore[attr-defined]
        sampler = RssSampler(server.pid)
        sampler.start()
        idle_rss = sum(tree_rss_mib(server.pid).values())
        ctx = mp.get_context("spawn")
        barrier = ctx.Barrier(args.clients + 1)
        queue = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(k, url, home, args.duration, barrier, queue))
                 for k in range(args.clients)]
        spawn_t = time.monotonic()
        for p in procs:
            p.start()
        with suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=600)
        start = time.monotonic()
        neighbours, cpu0 = Others().start(), server_cpu_s(server)
        print(f"  {args.clients} clients started in {start - spawn_t:.1f} s; logging...",
              flush=True)
        outs = [queue.get(timeout=args.duration + 900) for _ in procs]
        end = max((o["end"] for o in outs if "end" in o), default=time.monotonic())
        neighbours.stop()
        server_cpu = server_cpu_s(server) - cpu0
        for p in procs:
            p.join(timeout=60)
        sampler.halt.set()
        sampler.join()
        # read every point back, through the server
        with home_env(Path(home)):
            client = fl.Client(url)
            sent = stored = 0
            bad: list[str] = []
            for o in outs:
                if o["run_id"] is None:
                    continue
                sent += o["steps"] * len(KEYS)
                for key in KEYS:
                    steps = [m.step for m in client.get_metric_history(o["run_id"], key)]
                    stored += len(steps)
                    if sorted(steps) != list(range(o["steps"])):
                        bad.append(f"client {o['worker']} {key}: {len(steps)} stored of "
                                   f"{o['steps']} sent")
                status = client.get_run(o["run_id"]).status.value
                if status != "FINISHED":
                    bad.append(f"client {o['worker']}: run {status}")
            client.store.close()
        problems = server_problems(server)
    statuses: dict[str, int] = {}
    for o in outs:
        for kind, n in o["statuses"].items():
            statuses[kind] = statuses.get(kind, 0) + n
    non_2xx = sorted({line for o in outs for line in o["non_2xx"]})
    requests = statuses.pop("sent", 0)
    unanswered = requests - sum(statuses.values())
    failed_attempts = [line for o in outs for line in o["failed_attempts"]]
    errors = [o["error"] for o in outs if o["error"]]
    logging = [(t - start, v) for t, v in sampler.samples if start <= t <= end]
    if not logging:
        logging = [(t - start, v) for t, v in sampler.samples]
    rss = [v for _, v in logging]
    mid = [v for t, v in logging if t >= (end - start) / 2]
    warm = [v for t, v in logging if t >= min(10.0, (end - start) / 4)]  # after warm-up
    wall = end - start
    out = {"clients": args.clients, "duration_s": args.duration, "wall_s": wall,
           "sent": sent, "stored": stored, "lost": sent - stored, "bad": bad,
           "points_per_s": stored / wall if wall > 0 else math.nan,
           "statuses": statuses, "5xx": statuses.get("5xx", 0), "errors": errors,
           "requests": requests, "unanswered": unanswered, "non_2xx": non_2xx,
           "failed_attempts": failed_attempts,
           "exit_codes": [p.exitcode for p in procs], "server_log": problems,
           "rss_idle_mib": idle_rss, "rss_start_mib": rss[0], "rss_end_mib": rss[-1],
           "rss_max_mib": max(rss), "rss_mid_mib": mid[0] if mid else rss[-1],
           "rss_growth": rss[-1] / rss[0] - 1, "rss_samples": logging,
           "rss_warm_mib": warm[0] if warm else rss[0],
           "rss_growth_after_warmup": rss[-1] / (warm[0] if warm else rss[0]) - 1,
           "server_cpu_s": server_cpu, "server_cores": server_cpu / wall if wall else 0.0,
           "other_cpu": neighbours.other, "steal": neighbours.steal}
    out["memory_flat"] = out["rss_growth"] < TARGET_RSS_GROWTH
    out["no_loss"] = not bad and sent == stored and not errors
    out["no_5xx"] = out["5xx"] == 0 and unanswered == 0
    print(f"  {wall:.1f} s: {sent:,} points sent, {stored:,} stored ({stored / wall:,.0f} "
          f"points/s), lost {sent - stored:,}; runs incomplete or not FINISHED: {len(bad)}; "
          f"client errors {len(errors)}")
    print(f"  {requests:,} requests; answers: {statuses} (5xx: {out['5xx']}; requests "
          f"without an answer: {unanswered}); the server used "
          f"{out['server_cores']:.2f} CPUs ({server_cpu / max(stored, 1) * 1e6:.1f} us per "
          "point)")
    if non_2xx:
        print(f"  answers other than 2xx: {non_2xx[:6]}")
    for line in failed_attempts[:5]:
        print(f"  attempt without an answer (the client retries it): {line}")
    print(f"  server RSS: idle {idle_rss:.0f} MiB; logging: first {rss[0]:.0f}, after "
          f"{min(10.0, wall / 4):.0f} s {out['rss_warm_mib']:.0f}, half-way "
          f"{out['rss_mid_mib']:.0f}, last {rss[-1]:.0f}, max {max(rss):.0f} MiB "
          f"({out['rss_growth']:+.1%} first to last, {out['rss_growth_after_warmup']:+.1%} "
          f"from {min(10.0, wall / 4):.0f} s to last; {len(rss)} samples)")
    print(f"  ({neighbours.report()})")
    for error in errors[:3]:
        print("  client error:", error.strip().splitlines()[-1])
    for line in bad[:5] + problems[:5]:
        print("  problem:", line)
    return out


# -- report ----------------------------------------------------------------------------------
def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def table_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, measured, target, verdict) rows."""
    rows: list[tuple[str, str, str, str]] = []
    p1 = r.get("mlflow_client", {})
    f, m = p1.get("forgeline", {}), p1.get("mlflow", {})
    if "points_per_s" in f:
        ref = (f" vs mlflow server {m['points_per_s']:,.0f}/s = **{p1['ratio']:,.1f}x**"
               if "ratio" in p1 else "")
        rows.append(("MLflow client → server, log_param/log_metric call by call",
                     f"forgeline server {f['points_per_s']:,.0f} points/s{ref}",
                     f"≥ {TARGET_RATIO:g}x MLflow", verdict(p1.get("ratio_met"))))
        ref = (f" vs mlflow server {m['search_median_ms']:,.1f} ms"
               if "search_median_ms" in m else "")
        rows.append(("MLflow client `mlflow.search_runs` (filter + order_by), median",
                     f"forgeline server {f['search_median_ms']:.1f} ms{ref}", "< 100 ms",
                     verdict(p1.get("search_met"))))
    p2 = r.get("client", {})
    if "1 key" in p2:
        rows.append((f"Forgeline client over HTTP, {p2['points']:,} points call by call "
                     "(run.end() included), median",
                     f"{p2['1 key']['points_per_s']:,.0f} points/s (10 keys: "
                     f"{p2['10 keys']['points_per_s']:,.0f}/s); per point: client CPU "
                     f"{p2['1 key']['client_cpu_us_per_point']:.1f} us, server CPU "
                     f"{p2['1 key']['server_cpu_us_per_point']:.1f} us",
                     f"≥ {TARGET_CLIENT_POINTS:,.0f}/s", verdict(p2["log_met"])))
        for label, q in p2["queries"].items():
            rows.append((f"Forgeline client `search_runs` over {p2['search_runs']:,} runs x "
                         f"{p2['search_metrics']} metrics, {label}, median round trip",
                         f"{q['median_ms']:.1f} ms (p95 {q['p95_ms']:.1f})",
                         f"< {TARGET_CLIENT_SEARCH_MS:g} ms",
                         verdict(q["median_ms"] < TARGET_CLIENT_SEARCH_MS)))
    p3 = r.get("concurrent", {})
    if "sent" in p3:
        rows.append((f"{p3['clients']} clients x {p3['wall_s']:.0f} s: points stored / sent",
                     f"{p3['stored']:,} / {p3['sent']:,} ({p3['points_per_s']:,.0f} points/s)",
                     "no lost point", verdict(p3["no_loss"])))
        rows.append((f"{p3['clients']} clients: 5xx answers (requests left without one)",
                     f"{p3['5xx']} of {sum(p3['statuses'].values()):,} ({p3['unanswered']})",
                     "none",
                     verdict(p3["no_5xx"])))
        rows.append((f"{p3['clients']} clients: server RSS first / last / max",
                     f"{p3['rss_start_mib']:.0f} / {p3['rss_end_mib']:.0f} / "
                     f"{p3['rss_max_mib']:.0f} MiB ({p3['rss_growth']:+.1%}; from "
                     f"{min(10.0, p3['wall_s'] / 4):.0f} s on: "
                     f"{p3['rss_growth_after_warmup']:+.1%})",
                     f"flat (< {TARGET_RSS_GROWTH:.0%} growth)", verdict(p3["memory_flat"])))
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print("\n== summary ==")
    for row in rows:
        print("  ".join(cell.replace("**", "").ljust(w) for cell, w in zip(row, widths,
                                                                            strict=True)))


def markdown(r: dict[str, Any], rows: list[tuple[str, str, str, str]], command: str) -> str:
    m = r["machine"]
    lines = ["| figure | measured | target | verdict |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    p1 = r.get("mlflow_client", {})
    shares = [f"{label} {part['other_cpu']:.0%}" for label, part in (
        ("MLflow client vs forgeline server", p1.get("forgeline", {})),
        ("MLflow client vs mlflow server", p1.get("mlflow", {})),
        ("Forgeline client", r.get("client", {})),
        ("concurrent clients", r.get("concurrent", {}))) if "other_cpu" in part]
    detail = []
    if any("points_per_s" in p1.get(s, {}) for s in ("forgeline", "mlflow")):
        detail = ["", "The MLflow client's script, per server (logging phase: "
                  f"{p1['forgeline'].get('log_calls', 0):,} calls, of which "
                  f"{p1['forgeline'].get('points', 0):,} `log_metric`):", "",
                  "| server | points/s | `log_metric` call median / p99 | server CPU per call "
                  "| mlflow client CPU per call | `mlflow.search_runs` median / p95 "
                  "| `MlflowClient.search_runs` median |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for s, label in (("forgeline", "forgeline server"), ("mlflow", "mlflow server")):
            g = p1.get(s, {})
            if "points_per_s" in g:
                detail.append(
                    f"| {label} | {g['points_per_s']:,.0f} | {g['call_median_ms']:.1f} / "
                    f"{g['call_p99_ms']:.1f} ms | {g['server_cpu_per_call_ms']:.2f} ms | "
                    f"{g['client_cpu_per_call_ms']:.2f} ms | {g['search_median_ms']:.1f} / "
                    f"{g['search_p95_ms']:.1f} ms | {g['search_client_median_ms']:.1f} ms |")
    return "\n".join([
        f"Machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, {m.get('ram', '?')} RAM, "
        f"{m['os']}, Python {m['python']}, SQLite {m['sqlite']}; forgeline at {m['commit']}.",
        "", f"Other processes' share of the CPUs during each part: {'; '.join(shares)}.", "",
        *lines, *detail, "", f"Reproduce: `{command}`", ""])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_mlflow_client"]:
        return mlflow_client_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run: 2 runs x 20 steps, 20,000 points x 2, "
                             "1,000 runs to search, 10 s of concurrent clients")
    parser.add_argument("--workers", type=int, default=1, help="workers of each server")
    parser.add_argument("--runs", type=int, default=10, help="part 1: runs")
    parser.add_argument("--params", type=int, default=10, help="part 1: params a run")
    parser.add_argument("--metrics", type=int, default=5, help="part 1: metric keys")
    parser.add_argument("--steps", type=int, default=100, help="part 1: steps a metric")
    parser.add_argument("--searches", type=int, default=20, help="timed searches, each kind")
    parser.add_argument("--points", type=int, default=100_000,
                        help="part 2: points a run, call by call")
    parser.add_argument("--repeat", type=int, default=5, help="part 2: repeats")
    parser.add_argument("--search-runs", type=int, default=10_000,
                        help="part 2: runs to search")
    parser.add_argument("--search-metrics", type=int, default=20,
                        help="part 2: metrics a run")
    parser.add_argument("--clients", type=int, default=32,
                        help="part 3: client processes")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds, part 3")
    parser.add_argument("--skip-mlflow", action="store_true", help="no mlflow server")
    parser.add_argument("--only", nargs="+", choices=("mlflow_client", "client", "concurrent"))
    parser.add_argument("--json", help="where to write the results (default benchmarks/out/)")
    if "--quick" in argv:  # smaller defaults; what is given explicitly still wins
        parser.set_defaults(runs=2, steps=20, searches=5, points=20_000, repeat=2,
                            search_runs=1_000, duration=10.0)
    args = parser.parse_args(argv)
    print_machine()
    busy = check_quiet()
    results: dict[str, Any] = {"quick": args.quick, "workers": args.workers, "busy_before": busy,
                               "args": {k: v for k, v in vars(args).items() if k != "json"}}
    parts = args.only or ["mlflow_client", "client", "concurrent"]
    failed = False
    with scratch_dir("team-server") as tmp:
        for part, fn in (("mlflow_client", part_mlflow_client), ("client", part_client),
                         ("concurrent", part_concurrent)):
            if part not in parts:
                continue
            start = time.perf_counter()
            try:
                results[part] = fn(args, tmp)
            except Exception:
                traceback.print_exc()
                results[part] = {"crashed": traceback.format_exc()}
                failed = True
            results[part]["took_s"] = time.perf_counter() - start
            failed |= results[part].get("verified") is False or \
                results[part].get("no_loss") is False or results[part].get("no_5xx") is False
    results["machine"] = machine()
    rows = table_rows(results)
    if rows:
        print_table(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    path = Path(args.json) if args.json else OUT / (
        "bench_team_server_quick.json" if args.quick else "bench_team_server.json")
    path.write_text(json.dumps({"benchmark": "team_server", "machine": results["machine"],
                                "results": results}, indent=2))
    command = ".venv/bin/python benchmarks/bench_team_server.py " + " ".join(argv)
    path.with_suffix(".md").write_text(markdown(results, rows, command.strip()))
    print(f"\nwrote {path} and {path.with_suffix('.md')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
