"""Shared helpers of the benchmark scripts: paths, the machine, the MLflow subprocess, output.

Each benchmark prints its figures and writes them as JSON (``--json PATH``) so that
``run_all.py`` can print one summary. Nothing here is timed.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
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


@contextlib.contextmanager
def home_env(home: Path) -> Iterator[Path]:
    """``FORGELINE_HOME=home`` in this process; restored (and the stores Forgeline opened
    meanwhile closed) afterwards."""
    old_home = os.environ.get("FORGELINE_HOME")
    os.environ["FORGELINE_HOME"] = str(home)
    try:
        yield home
    finally:
        from forgeline.store import close_stores

        close_stores()
        if old_home is None:
            os.environ.pop("FORGELINE_HOME", None)
        else:
            os.environ["FORGELINE_HOME"] = old_home


@contextlib.contextmanager
def forgeline_home(path: Path) -> Iterator[Path]:
    """Work in ``path`` with ``FORGELINE_HOME=path/.forgeline`` (see :func:`home_env`)."""
    old_cwd = Path.cwd()
    os.chdir(path)
    try:
        with home_env(path / ".forgeline"):
            yield path
    finally:
        os.chdir(old_cwd)


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


def ui_run(i: int, n_metrics: int, n_params: int, seed: int
           ) -> tuple[str, int, dict[str, str], list[tuple[str, float, int, int]]]:
    """Run ``i`` of the web UI's benchmark: like :func:`search_run`, with ``n_params``
    params (``p0``..: numbers and words) instead of three."""
    name, start_time, _, metrics = search_run(i, n_metrics, seed)
    rng = random.Random(seed * 7_919 + i)
    params = {f"p{k}": (str(rng.randint(1, 50)) if k % 2 == 0
                        else rng.choice(["gbdt", "dart", "goss", "rf"])) for k in range(n_params)}
    return name, start_time, params, metrics


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


# -- serving and batch scoring (bench_serve.py, bench_batch.py, bench_soak.py) ---------------
# The model of issue 4: a 100-tree HistGradientBoostingClassifier on 20 numeric features,
# in the pipeline Forgeline's training builds around it (median imputer + scaler, then the
# trees). numpy, scikit-learn and forgeline are imported inside the functions: .venv-bench
# imports this module too.
SERVE_MODEL = "bench-hgb"
SERVE_FEATURES = tuple(f"f{i:02d}" for i in range(20))
SERVE_TREES = 100


def hgb_rows(n: int, seed: int) -> tuple[Any, Any]:
    """``n`` rows of the 20 features (float64 array) and their 0/1 label, deterministic in
    ``seed``. Interactions and curvature, so that the trees are not trivial."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, len(SERVE_FEATURES)))
    x[:, 10:15] = x[:, 10:15] * 3 + 5  # other scales and offsets
    x[:, 15:] = rng.exponential(2.0, (n, 5))
    logit = (x[:, 0] - 0.8 * x[:, 1] * x[:, 2] + 0.5 * x[:, 3] ** 2 - 1.0
             + 0.3 * (x[:, 10] - 5) - 0.4 * np.log1p(x[:, 15]) + np.sin(2 * x[:, 4]))
    y = (logit + rng.logistic(0.0, 1.0, n) > 0).astype(np.int64)
    return x, y


@dataclass(frozen=True)
class ServeModel:
    """The registered benchmark model: its store, its reference, the fitted pipeline."""

    home: Path  # FORGELINE_HOME of the commands run against it
    store_uri: str
    ref: str  # bench-hgb@champion
    pipeline: Any
    package: Path  # the package directory as registered (in the artifact store)

    def env(self) -> dict[str, str]:
        """The environment of a ``forgeline`` command that uses this store."""
        return {**os.environ, "FORGELINE_HOME": str(self.home),
                "FORGELINE_STORE_URI": self.store_uri, "PYTHONWARNINGS": "ignore"}


def build_serve_model(home: Path, rows: int = 20_000, seed: int = 0) -> ServeModel:
    """Fit the benchmark model and register it in a new Forgeline store under ``home``,
    as ``forgeline train`` registers a model: package (skops file, signature, profile,
    metrics, card, manifest) logged by a run, then version 1 with alias ``champion``."""
    import pandas as pd

    from forgeline.data.inference import infer_schema
    from forgeline.data.profile import build_profile, reference_extras
    from forgeline.entities import Task
    from forgeline.packaging import Signature, save_package
    from forgeline.store import close_stores
    from forgeline.tracking.client import Client
    from forgeline.training.tuning import ModelPlan

    x, y = hgb_rows(rows, seed)
    frame = pd.DataFrame(x, columns=list(SERVE_FEATURES)).assign(y=y)
    test = pd.DataFrame(hgb_rows(rows // 4, seed + 1)[0], columns=list(SERVE_FEATURES))
    schema = infer_schema(frame, "y")
    plan = ModelPlan(Task.BINARY, schema, SERVE_FEATURES, "roc_auc", seed, False)
    pipeline = plan.pipeline("hist_gradient_boosting", {"max_iter": SERVE_TREES})
    pipeline.fit(frame[list(SERVE_FEATURES)], frame["y"])
    assert pipeline.named_steps["model"].n_iter_ == SERVE_TREES
    classes = list(pipeline.classes_)
    features = frame[list(SERVE_FEATURES)]
    signature = Signature.from_frame(features, schema, "binary", classes)
    profile = build_profile(frame, schema)
    profile.update(reference_extras(pipeline, features, test, schema, "binary", classes,
                                    profile=profile, seed=seed))
    home.mkdir(parents=True, exist_ok=True)
    uri = sqlite_uri(home / "forgeline.db")
    client = Client(uri)
    with tempfile.TemporaryDirectory() as tmp:
        package = save_package(Path(tmp) / "model", pipeline, signature, profile=profile,
                               metrics={}, card=f"{SERVE_TREES}-tree HGB benchmark model")
        with client.start_run("bench-serving", name="hgb-100") as run:
            run.log_artifact(package, "model")
        version = client.register_model(SERVE_MODEL, run.run_id, "model",
                                        aliases=["champion"])
    package_dir = client.download_model(version.ref, home / "package")
    close_stores()
    return ServeModel(home, uri, f"{SERVE_MODEL}@champion", pipeline, package_dir)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc; [] when it is gone)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    if not Path(f"/proc/{pid}").exists():
        return []
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``) in MiB; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mib(pid: int) -> dict[int, float]:
    """RSS in MiB of ``pid`` and each of its descendants."""
    return {p: rss_mib(p) for p in process_tree(pid)}


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


class Server:
    """A server command run in its own process group, stopped (SIGTERM, then SIGKILL) on exit.

        with Server("forgeline", cmd, url, body, env=env) as server:
            server.wait_ready(); ...

    Its output goes to ``log`` (a file), shown when it fails to start.
    """

    def __init__(self, name: str, command: Sequence[str], url: str, body: bytes,
                 log: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name, self.command, self.url, self.body = name, list(command), url, body
        self.log, self.env, self.cwd = log, env, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = float("nan")
        self.answer: Any = None

    def __enter__(self) -> Server:
        self._out = open(self.log, "wb")  # closed in __exit__
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command, stdout=self._out, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def post(self, timeout: float = 10.0) -> tuple[int, bytes]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, data=self.body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def wait_ready(self, timeout: float = 180.0, settle_s: float = 1.0) -> Any:
        """Poll with the benchmark's request until it answers 200; then wait until the
        process tree is idle (every worker done starting: imports, model loading, ONNX
        conversion) for ``settle_s``. Returns the parsed answer."""
        import urllib.error

        deadline = self._t0 + timeout
        status, body = 0, b""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} while "
                                   f"starting:\n{self._tail()}")
            try:
                status, body = self.post(timeout=5.0)
                if status == 200:
                    break
                if 400 <= status < 500:  # a wrong request: waiting will not help
                    raise RuntimeError(f"{self.name} refuses the benchmark's request "
                                       f"({status}): {body[:500]!r}")
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.25)
        else:
            raise RuntimeError(f"{self.name} did not answer 200 within {timeout:.0f} s "
                               f"(last status {status}: {body[:300]!r}):\n{self._tail()}")
        self.startup_s = time.monotonic() - self._t0
        # the other workers may still be starting: wait until the tree uses little CPU
        last = tree_cpu_s(self.pid)
        while time.monotonic() < deadline:
            time.sleep(settle_s)
            now = tree_cpu_s(self.pid)
            if now - last < 0.15 * settle_s:
                break
            last = now
        self.answer = json.loads(body)
        return self.answer

    def _tail(self, lines: int = 30) -> str:
        self._out.flush()
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()


# -- wrk ---------------------------------------------------------------------------------------
WRK = shutil.which("wrk") or "/usr/bin/wrk"

_WRK_POST = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""
# Counting statuses costs wrk a Lua call per response: used where 5xx must be told apart.
_WRK_STATUS = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) s2xx, s4xx, s5xx, sother = 0, 0, 0, 0 end
function response(status, headers, body)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 200 and status < 300 then s2xx = s2xx + 1
  else sother = sother + 1 end
end
function done(summary, latency, requests)
  local t = {s2xx = 0, s4xx = 0, s5xx = 0, sother = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("STATUS 2xx=%d 4xx=%d 5xx=%d other=%d\\n",
                         t.s2xx, t.s4xx, t.s5xx, t.sother))
end
"""


def wrk_script(folder: Path, name: str, body: bytes, count_statuses: bool = False) -> Path:
    """A wrk Lua script POSTing ``body`` as JSON (and counting statuses if asked)."""
    path = folder / f"{name}.lua"
    text = _WRK_POST.format(body=json.dumps(body.decode()))
    path.write_text(text + (_WRK_STATUS if count_statuses else ""))
    return path


def run_wrk(url: str, script: Path, duration_s: float, connections: int = 32,
            threads: int = 2, timeout_s: float = 10.0) -> dict[str, Any]:
    """``wrk -tT -cC -dDs --latency --timeout`` with ``script``; its output parsed."""
    command = [WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s",
               "--latency", f"--timeout={max(1, round(timeout_s))}s", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          timeout=duration_s + timeout_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    result = parse_wrk(done.stdout)
    result["command"] = " ".join(command)
    return result


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    import re

    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> dict[str, Any]:
    """req/s, latency percentiles (ms), requests, non-2xx responses and socket errors
    from wrk's ``--latency`` output (and the status counts of :func:`wrk_script`)."""
    import re

    out: dict[str, Any] = {"non_2xx": 0, "socket_errors": {"connect": 0, "read": 0,
                                                           "write": 0, "timeout": 0}}
    for line in text.splitlines():
        s = line.strip()
        if m := re.match(r"(50|75|90|99)%\s+(\S+)$", s):
            out[f"p{m.group(1)}_ms"] = _ms(m.group(2))
        elif m := re.match(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", s):
            out["mean_ms"], out["max_ms"] = _ms(m.group(1)), _ms(m.group(3))
        elif m := re.match(r"(\d+) requests in ([\d.]+\w+),", s):
            out["requests"] = int(m.group(1))
            out["duration_s"] = _ms(m.group(2)) / 1000
        elif m := re.match(r"Requests/sec:\s+([\d.]+)", s):
            out["rps"] = float(m.group(1))
        elif m := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", s):
            out["non_2xx"] = int(m.group(1))
        elif m := re.match(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                           r"timeout (\d+)", s):
            out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                            map(int, m.groups()), strict=True))
        elif m := re.match(r"STATUS 2xx=(\d+) 4xx=(\d+) 5xx=(\d+) other=(\d+)", s):
            out["status"] = dict(zip(("2xx", "4xx", "5xx", "other"), map(int, m.groups()),
                                     strict=True))
    if "rps" not in out:
        raise RuntimeError(f"cannot parse wrk's output:\n{text}")
    out["errors"] = sum(out["socket_errors"].values())
    return out


def busy_cpu_s() -> float:
    """CPU seconds all CPUs spent busy since boot (not idle or waiting for I/O); 0 off Linux."""
    stat = _proc_stat()
    return 0.0 if stat is None else (stat[0] - stat[1]) / os.sysconf("SC_CLK_TCK")


# -- Markdown of the training benchmarks (bench_train_overhead.py, bench_train_scores.py)
def write_markdown(name: str, body: str) -> Path:
    """Write this benchmark's section to benchmarks/out/bench_train_NAME.md and rebuild
    benchmarks/out/bench_train.md from every section there (overhead runs first)."""
    out = BENCH_DIR / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_train_{name}.md").write_text(body)
    parts = sorted(out.glob("bench_train_overhead*.md")) + sorted(
        out.glob("bench_train_scores*.md"))
    (out / "bench_train.md").write_text(
        "## Training\n\n" + "\n".join(p.read_text() for p in parts))
    return out / "bench_train.md"
