"""Shared helpers of the benchmark scripts: paths, the machine, the MLflow subprocess, output.

Each benchmark prints its figures and writes them as JSON (``--json PATH``) so that
``run_all.py`` can print one summary. Nothing here is timed.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "benchmarks"
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PYTHON = BENCH_VENV / "bin" / "python"
MLFLOW_REF = BENCH_DIR / "mlflow_ref.py"
SETUP_HINT = ("create it with `benchmarks/setup_bench_env.sh` (or `make bench`, which runs it), "
              "then rerun")

if str(ROOT) not in sys.path:  # tests/pgserver.py lives at the repository root
    sys.path.insert(0, str(ROOT))


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    info: dict[str, str] = {
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": platform.platform(),
    }
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False)
    info["commit"] = git.stdout.strip() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return info


def print_machine() -> None:
    m = machine()
    print(f"machine: {m.get('cpu', '?')}, {m['cpus']} CPUs, {m.get('ram', '?')} RAM, "
          f"{m['os']}, Python {m['python']}, SQLite {m['sqlite']}; forgeline at {m['commit']}")


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary folder removed afterwards (set FORGELINE_BENCH_KEEP=1 to keep it)."""
    path = Path(tempfile.mkdtemp(prefix=f"forgeline-bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("FORGELINE_BENCH_KEEP"):
            print(f"(kept {path})")
        else:
            shutil.rmtree(path, ignore_errors=True)


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ratio(ours: float, reference: float) -> str:
    return f"{ours / reference:,.2f}x" if reference else "n/a"


def mlflow_available() -> bool:
    return BENCH_PYTHON.is_file()


def run_mlflow(args: Sequence[str], timeout: float = 900) -> dict[str, Any] | None:
    """Run ``mlflow_ref.py ARGS`` in .venv-bench; its JSON result, or None when skipped."""
    if not mlflow_available():
        print(f"MLflow reference skipped: {BENCH_VENV} is missing; {SETUP_HINT}.")
        return None
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([str(BENCH_PYTHON), str(MLFLOW_REF), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        print(f"MLflow reference failed (exit {done.returncode}):\n{tail}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def postgres_version(uri: str) -> str:
    """The server version of a running PostgreSQL (``SHOW server_version``)."""
    import psycopg

    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@contextmanager
def postgres() -> Iterator[Any]:
    """A throw-away PostgreSQL server (tests/pgserver.py), stopped afterwards.

    Its settings are the test server's: fsync=off, synchronous_commit=off,
    full_page_writes=off (durability traded for speed, as on a CI box).
    """
    from tests.pgserver import PostgresServer

    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


def write_json(path: str | None, name: str, results: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps({"benchmark": name, "machine": machine(),
                                          "results": results}, indent=2))


# -- the data set of bench_search.py, identical for Forgeline and MLflow ----------------------
SEARCH_BASE_TIME = 1_700_000_000_000  # ms; run i starts at base + i * 1000


def search_filter() -> str:
    return "metrics.m3 > 0.5 and params.depth = '6'"


def search_order() -> str:
    return "metrics.m0 DESC"


def search_run(i: int, n_metrics: int, seed: int
               ) -> tuple[str, int, dict[str, str], list[tuple[str, float, int, int]]]:
    """Run ``i``: (name, start_time, params, metric points (key, value, step, timestamp)).

    Deterministic in (i, seed), so that any process builds the same run.
    """
    rng = random.Random(seed * 1_000_003 + i)
    start_time = SEARCH_BASE_TIME + i * 1000
    params = {"depth": str(rng.randint(2, 10)),
              "lr": repr(rng.choice([0.01, 0.03, 0.1, 0.3])),
              "n_estimators": str(rng.choice([100, 200, 500, 1000]))}
    metrics = [(f"m{j}", rng.random(), 0, start_time) for j in range(n_metrics)]
    return f"run-{i:05d}", start_time, params, metrics


def profile(fn: Callable[[], Any], label: str, top: int = 18) -> None:
    """Run ``fn`` once under cProfile and print where the time went (cumulative)."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print(f"--- cProfile: {label} ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def check_quiet(seconds: float = 1.0) -> float:
    """Print how busy the CPUs were just before the run, and warn when other work runs:
    on 2 CPUs a busy neighbour cuts every figure. Returns the busy fraction (0..1).
    """
    first = _proc_stat()
    time.sleep(seconds)
    last = _proc_stat()
    if first is None or last is None:
        return 0.0
    busy = 1 - (last[1] - first[1]) / max(1, last[0] - first[0])
    print(f"CPU busy before the run: {busy:.0%} (load average {os.getloadavg()[0]:.2f})")
    if busy > 0.15:
        print(f"WARNING: other work is using {busy:.0%} of the CPUs; the figures below will "
              "be low and noisy. Rerun on a quiet machine.")
    return busy


class Neighbours:
    """How much CPU other processes used while a block ran (this process and its waited-for
    children excluded), as a fraction of all CPUs; also the hypervisor's steal time.

        with Neighbours() as n:
            ...
        print(n.report())
    """

    def __enter__(self) -> Neighbours:
        self._stat = _proc_stat()
        self._own = _own_cpu()
        self._t = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        stat, own, wall = _proc_stat(), _own_cpu(), time.monotonic() - self._t
        cpus = os.cpu_count() or 1
        if not stat or not self._stat:
            self.other = self.steal = 0.0
            return
        busy = (stat[0] - stat[1]) - (self._stat[0] - self._stat[1])  # jiffies
        ticks = os.sysconf("SC_CLK_TCK")
        self.other = max(0.0, busy / ticks - (own - self._own)) / (wall * cpus)
        self.steal = (stat[2] - self._stat[2]) / ticks / (wall * cpus)

    def report(self) -> str:
        return f"other processes used {self.other:.0%} of the CPUs, steal {self.steal:.0%}"


def _proc_stat() -> tuple[int, int, int] | None:
    """(total, idle + iowait, steal) jiffies since boot, or None off Linux."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[3] + fields[4], fields[7] if len(fields) > 7 else 0


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def cpu_index() -> float:
    """Milliseconds for a fixed pure-Python loop: how fast the host runs us right now
    (on a shared virtual machine it can swing by 2x from one second to the next).
    """
    start = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i * 2
    return (time.perf_counter() - start) * 1000
