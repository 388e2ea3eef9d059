"""Run every benchmark and print a summary: ``make bench`` (or ``.venv/bin/python
benchmarks/run_all.py``; ``--soak`` adds the 10-minute serving soak).

Creates .venv-bench (MLflow, the reference) first when it is missing, through
``benchmarks/setup_bench_env.sh``; without it the MLflow references are skipped. Each
benchmark's full output is printed as it runs and its figures are kept as JSON in
``benchmarks/out/`` (git-ignored). Exits non-zero when a benchmark crashes or finds
points missing; a missed target is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from _common import BENCH_DIR, BENCH_PYTHON, ROOT, check_quiet, print_machine

SCRIPTS = ("bench_startup.py", "bench_log_metric.py", "bench_search.py",
           "bench_concurrency.py", "bench_serve.py", "bench_batch.py")
SOAK = "bench_soak.py"  # 10 minutes at saturation: only with --soak (or --only)
OUT = BENCH_DIR / "out"


def ensure_bench_env() -> None:
    if BENCH_PYTHON.is_file():
        return
    print("== .venv-bench is missing: creating it for the MLflow reference "
          "(benchmarks/setup_bench_env.sh) ==", flush=True)
    done = subprocess.run(["bash", str(BENCH_DIR / "setup_bench_env.sh")], cwd=ROOT,
                          check=False)
    if done.returncode != 0:
        print("Could not create .venv-bench; the MLflow references will be skipped.")


def summary(name: str, data: dict[str, Any]) -> list[str]:
    r = data["results"]
    lines: list[str] = []
    if name == "bench_log_metric.py":
        for n, row in r["sizes"].items():
            ok = min(row["1 key"], row["10 keys"]) >= r["target"]
            lines.append(f"log_metric {int(n):,} points: {row['1 key']:,.0f} points/s (1 key), "
                         f"{row['10 keys']:,.0f} (10 keys); sqlite3 ceiling "
                         f"{row['sqlite_executemany']:,.0f} rows/s; target "
                         f"{r['target']:,.0f}: {'MET' if ok else 'MISSED'}")
        if "mlflow" in r:
            m = r["mlflow"]
            lines.append(f"  MLflow {m['mlflow']}: log_metric {m['log_metric_per_s']:,.0f} "
                         f"points/s, log_batch {m['log_batch_per_s']:,.0f} points/s")
    elif name == "bench_search.py":
        for backend in ("sqlite", "postgres", "mlflow"):
            for label, q in r.get(backend, {}).get("queries", {}).items():
                verdict = ("" if backend == "mlflow" else
                           "  MET" if max(q["median_ms"], q["p95_ms"]) < r["target_ms"]
                           else "  MISSED")
                who = "MLflow" if backend == "mlflow" else f"Forgeline {backend}"
                lines.append(f"search {who:<20} {label:<13} median {q['median_ms']:6.1f} ms, "
                             f"p95 {q['p95_ms']:6.1f} ms{verdict}")
    elif name == "bench_serve.py":
        lines += _serve_summary(r)
    elif name == "bench_startup.py":
        for label, c in r["commands"].items():
            verdict = ""
            if label == "forgeline --help":
                verdict = (f"  target < {r['target_s']:g} s: "
                           + ("MET" if c["median_s"] < r["target_s"] else "MISSED"))
            lines.append(f"startup {label:<30} median {c['median_s']:.3f} s "
                         f"({c['over_reference_s']:+.3f} s over the interpreter){verdict}")
    elif name == "bench_batch.py":
        for rows, size in r["sizes"].items():
            best = size["best"]
            lines.append(f"batch {int(rows):,} rows: forgeline predict {best['rows_per_s']:,.0f} "
                         f"rows/s end to end ({size['ratio']:.2f}x raw; scoring "
                         f"{size['scoring_ratio']:.2f}x), raw {size['raw']['rows_per_s']:,.0f} "
                         f"rows/s; peak RSS {best['peak_rss_mib']:,.0f} MiB")
        if "ratio_met" in r:
            lines.append(f"  batch target >= {r['target_ratio']:.0%} of raw: "
                         f"{'MET' if r['ratio_met'] else 'MISSED'}; peak memory growth "
                         f"{r['peak_growth']:+.0%}: {'MET' if r['memory_met'] else 'MISSED'}")
    elif name == SOAK:
        lines.append(f"soak {r['minutes']:g} min: {r['requests']:,} requests, 5xx "
                     f"{r['total_5xx']}, socket errors {r['total_socket_errors']}, RSS growth "
                     f"{r['growth']:+.1%}: {'PASSED' if r['passed'] else 'FAILED'}")
    else:
        for label, v in r["variants"].items():
            lines.append(f"concurrency {label}: {v['wall_s']:.2f} s, {v['points_per_s']:,.0f} "
                         f"points/s, {v['stored']:,}/{v['expected']:,} stored, "
                         f"{len(v['errors'])} errors (1 process: "
                         f"{v['sequential_points_per_s']:,.0f} points/s)")
    return lines


def _serve_summary(r: dict[str, Any]) -> list[str]:
    lines = []
    servers = r["servers"]
    ceiling = (servers.get("ceiling") or {}).get("median")
    for name, entry in servers.items():
        m = entry.get("median")
        if not m:
            continue
        verdict = ""
        if "target_met" in entry:
            verdict = (f"  target {r['target_rps']:,.0f} req/s, p99 <= "
                       f"{r['target_p99_ms']:g} ms: "
                       + ("MET" if entry["target_met"] else "MISSED"))
        share = f" ({m['rps'] / ceiling['rps']:.2f}x ceiling)" if ceiling else ""
        lines.append(f"serve {name:<19} {m['rps']:>8,.0f} req/s{share}, p99 {m['p99_ms']:.1f} ms,"
                     f" non-2xx {m['non_2xx']}, errors {m['errors']}{verdict}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=(*SCRIPTS, SOAK), help="run only these")
    parser.add_argument("--soak", action="store_true",
                        help=f"also run {SOAK} (10 minutes at saturation)")
    args = parser.parse_args(argv)
    ensure_bench_env()
    OUT.mkdir(exist_ok=True)
    print_machine()
    check_quiet()
    failures: list[str] = []
    lines: list[str] = []
    for script in args.only or (*SCRIPTS, *([SOAK] if args.soak else [])):
        out = OUT / script.replace(".py", ".json")
        out.unlink(missing_ok=True)
        print(f"\n== {script} ==", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(BENCH_DIR / script), "--json", str(out)],
                              cwd=ROOT, check=False)
        print(f"({script} took {time.perf_counter() - start:.0f} s)", flush=True)
        if done.returncode != 0:
            failures.append(f"{script} exited {done.returncode}")
        if out.is_file():
            lines += summary(script, json.loads(out.read_text()))
    print("\n== summary ==")
    print("\n".join(lines))
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
