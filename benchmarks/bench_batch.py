"""Figure: ``forgeline predict`` on 5,000,000 rows at >= 80% of the raw model's throughput,
with peak memory that does not grow with the file's size (issue 4).

The model is the serving benchmark's: a 100-tree HistGradientBoostingClassifier on 20
numeric features in Forgeline's pipeline (imputer + scaler + trees), registered in a
temporary store (``_common.build_serve_model``). The input is a Parquet file of ``--rows``
rows (an ``id`` key column and the 20 features), written row group by row group so that
generating it never holds the whole file in memory.

Measured, each in its own fresh process (so that peak RSS is that process's alone):

- **raw**: the fitted pipeline's ``predict_proba`` on the same rows, whole in memory (read
  before the clock starts), in chunks of ``--raw-chunk`` rows: rows/s of the model itself.
- **forgeline**: ``forgeline predict MODEL input.parquet -o scores.parquet --json``, end
  to end (interpreter start, imports, model loading, reading, validation, scoring, writing
  keys + prediction + probabilities): wall time and rows/s; the CLI's own scoring time
  (model loading excluded) beside it. Peak RSS from ``wait4`` (the process's high-water
  mark) and from polling /proc every 50 ms over the process and any children.

One untimed ``forgeline predict`` on a small file first fills the model cache (download,
ONNX conversion and its check), as any later call finds it. The scores are checked against
the raw model's on the first rows. Targets: forgeline end to end >= 80% of raw rows/s at
the largest size; peak RSS at the largest size within 10% of the smallest.

    .venv/bin/python benchmarks/bench_batch.py                       # 1M and 5M rows
    .venv/bin/python benchmarks/bench_batch.py --quick                # 500k and 1M rows
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    SERVE_FEATURES,
    Neighbours,
    build_serve_model,
    check_quiet,
    hgb_rows,
    print_machine,
    scratch_dir,
    tree_rss_mib,
    write_json,
)

HERE = Path(__file__).resolve()
FORGELINE = Path(sys.executable).with_name("forgeline")
TARGET_RATIO = 0.80  # forgeline end to end / raw
MEMORY_GROWTH = 0.10  # peak RSS at the largest file at most this much above the smallest
GROUP_ROWS = 100_000  # rows per Parquet row group of the input
SAMPLE = 20_000  # rows whose scores are compared with the raw model's


def write_input(path: Path, rows: int, seed: int = 11) -> None:
    """``rows`` rows (``id`` + the 20 features) in row groups of GROUP_ROWS, streamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), *[(f, pa.float64()) for f in SERVE_FEATURES]])
    with pq.ParquetWriter(path, schema) as writer:
        for first in range(0, rows, GROUP_ROWS):
            n = min(GROUP_ROWS, rows - first)
            x, _ = hgb_rows(n, seed * 1_000_003 + first)
            columns = [pa.array(range(first, first + n), pa.int64()),
                       *[pa.array(x[:, j]) for j in range(x.shape[1])]]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


# -- the raw model, in a child process -------------------------------------------------------
def raw_worker(package: Path, path: Path, chunk: int) -> dict[str, Any]:
    """The pipeline's predict_proba over the whole file, in memory (runs in a child)."""
    import resource

    import pandas as pd

    from forgeline.packaging import load_package

    pipeline = load_package(package).model
    started = time.perf_counter()
    frame = pd.read_parquet(path, columns=list(SERVE_FEATURES))
    read_s = time.perf_counter() - started
    pipeline.predict_proba(frame.iloc[:1000])  # warm-up: first-call costs
    started, cpu = time.perf_counter(), time.process_time()
    parts = [pipeline.predict_proba(frame.iloc[i:i + chunk])[:, 1]
             for i in range(0, len(frame), chunk)]
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    head = [float(v) for v in parts[0][:SAMPLE]]
    return {"rows": len(frame), "seconds": seconds, "rows_per_s": len(frame) / seconds,
            "cpu_s": cpu, "read_s": read_s, "chunk": chunk, "head_proba_1": head,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}



def raw(package: Path, path: Path, chunk: int) -> dict[str, Any]:
    with Neighbours() as neighbours:
        done = subprocess.run([sys.executable, str(HERE), "--raw-worker", str(package),
                               str(path), str(chunk)], capture_output=True, text=True,
                              check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode != 0:
        raise SystemExit(f"raw worker failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["others_cpu"] = neighbours.other
    return result


# -- forgeline predict, as a user runs it ------------------------------------------------------
def forgeline_predict(model: Any, path: Path, out: Path, extra: list[str] | None = None
                      ) -> dict[str, Any]:
    """Run the CLI; wall time, its JSON summary, peak RSS (wait4 and polled)."""
    command = [str(FORGELINE), "predict", model.ref, str(path), "-o", str(out), "--json",
               *(extra or [])]
    peak = {"tree_mib": 0.0, "samples": 0}
    timeline: list[tuple[float, float]] = []
    with Neighbours() as neighbours:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=model.env())
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.05):
                total = sum(tree_rss_mib(proc.pid).values())
                peak["tree_mib"] = max(peak["tree_mib"], total)
                peak["samples"] += 1
                if peak["samples"] % 10 == 0:
                    timeline.append((round(time.perf_counter() - started, 2), round(total)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # reading the pipes in threads: a full pipe must not block the child
        streams: dict[str, bytes] = {}
        readers = [threading.Thread(target=lambda k=k, s=s: streams.__setitem__(k, s.read()))
                   for k, s in (("out", proc.stdout), ("err", proc.stderr))]
        for reader in readers:
            reader.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        sampler.join()
        for reader in readers:
            reader.join()
    if proc.returncode != 0:
        raise SystemExit(f"forgeline predict failed ({proc.returncode}):\n"
                         f"{streams['err'].decode(errors='replace')[-3000:]}")
    summary = json.loads(streams["out"].decode())
    return {"wall_s": wall, "rows": summary["rows"], "rows_per_s": summary["rows"] / wall,
            "scoring_s": summary["seconds"], "scoring_rows_per_s": summary["rows_per_s"],
            "runtime": summary["runtime"], "peak_rss_mib": usage.ru_maxrss / 1024,
            "peak_tree_rss_mib": peak["tree_mib"], "rss_timeline": timeline,
            "cpu_s": usage.ru_utime + usage.ru_stime, "others_cpu": neighbours.other,
            "command": " ".join(command)}


def check_output(out: Path, rows: int, head: list[float]) -> dict[str, Any]:
    """Every row once, in order, keys passed through, scores equal to the raw model's."""
    import numpy as np
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(out).metadata
    names = pq.read_schema(out).names
    table = pq.read_table(out, columns=["id"])
    ids = table.column("id").to_numpy()
    first = pq.ParquetFile(out).iter_batches(batch_size=len(head), columns=["proba_1"])
    proba = next(first).column(0).to_numpy()
    diff = float(np.max(np.abs(proba - np.asarray(head)))) if len(head) else 0.0
    return {"rows": meta.num_rows, "columns": names,
            "ids_in_order": bool(meta.num_rows == rows and (ids == np.arange(rows)).all()),
            "max_abs_diff_vs_raw": diff, "matches_raw": diff <= 1e-6}


# -- the run -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000],
                        help="file sizes, smallest first (default 1M and 5M)")
    parser.add_argument("--raw-chunk", type=int, default=1_000_000,
                        help="rows per predict_proba call of the raw model")
    parser.add_argument("--repeats", type=int, default=1,
                        help="forgeline runs per size (the fastest is kept)")
    parser.add_argument("--quick", action="store_true", help="500k and 1M rows")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--raw-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_worker:
        package, path, chunk = args.raw_worker
        print(json.dumps(raw_worker(Path(package), Path(path), int(chunk))))
        return 0
    sizes = sorted([500_000, 1_000_000] if args.quick else args.rows)
    print_machine()
    busy = check_quiet()
    results: dict[str, Any] = {"target_ratio": TARGET_RATIO, "memory_growth": MEMORY_GROWTH,
                               "cpu_busy_before": busy, "sizes": {}}
    with scratch_dir("batch") as folder:
        started = time.perf_counter()
        model = build_serve_model(folder / "home")
        print(f"model: {model.ref}, {model.package.name} (built and registered in "
              f"{time.perf_counter() - started:.1f} s)")
        warm = folder / "warm.parquet"
        write_input(warm, 10_000)
        first = forgeline_predict(model, warm, folder / "warm.scores.parquet")
        print(f"first call (download, runtime selection, ONNX conversion): "
              f"{first['wall_s']:.1f} s, runtime {first['runtime']}")
        results["first_call"] = first
        for rows in sizes:
            path = folder / f"input-{rows}.parquet"
            started = time.perf_counter()
            write_input(path, rows)
            print(f"\n{rows:,} rows: input written in {time.perf_counter() - started:.1f} s "
                  f"({path.stat().st_size / 2**20:,.0f} MiB)", flush=True)
            reference = raw(model.package, path, args.raw_chunk)
            print(f"  raw model   {reference['rows_per_s']:>12,.0f} rows/s "
                  f"({reference['seconds']:.2f} s, in memory; peak RSS "
                  f"{reference['peak_rss_mib']:,.0f} MiB; others "
                  f"{reference['others_cpu']:.0%} CPU)", flush=True)
            runs = []
            for _ in range(args.repeats):
                out = folder / f"scores-{rows}.parquet"
                run = forgeline_predict(model, path, out)
                run["check"] = check_output(out, rows, reference["head_proba_1"])
                out.unlink()
                runs.append(run)
                print(f"  forgeline   {run['rows_per_s']:>12,.0f} rows/s end to end "
                      f"({run['wall_s']:.2f} s; scoring {run['scoring_rows_per_s']:,.0f} "
                      f"rows/s in {run['scoring_s']:.2f} s, {run['runtime']}); peak RSS "
                      f"{run['peak_rss_mib']:,.0f} MiB (polled {run['peak_tree_rss_mib']:,.0f}"
                      f"); others {run['others_cpu']:.0%} CPU; scores match raw: "
                      f"{run['check']['matches_raw']} (max diff "
                      f"{run['check']['max_abs_diff_vs_raw']:.1e}), ids in order: "
                      f"{run['check']['ids_in_order']}", flush=True)
            best = max(runs, key=lambda r: r["rows_per_s"])
            ratio = best["rows_per_s"] / reference["rows_per_s"]
            scoring_ratio = best["scoring_rows_per_s"] / reference["rows_per_s"]
            print(f"  ratio to raw: {ratio:.2f} end to end, {scoring_ratio:.2f} scoring only")
            results["sizes"][str(rows)] = {"raw": reference, "forgeline": runs, "best": best,
                                           "ratio": ratio, "scoring_ratio": scoring_ratio}
            path.unlink()
    _verdict(results, sizes)
    (BENCH_DIR / "out").mkdir(exist_ok=True)
    write_json(args.json or str(BENCH_DIR / "out" / "bench_batch.json"), "bench_batch",
               results)
    return 0 if all(s["best"]["check"]["matches_raw"] and s["best"]["check"]["ids_in_order"]
                    for s in results["sizes"].values()) else 1


def _verdict(results: dict[str, Any], sizes: list[int]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="forgeline predict vs the raw model (in memory)")
    for column in ("rows", "raw rows/s", "forgeline rows/s (end to end)", "ratio",
                   "scoring rows/s", "ratio", "peak RSS MiB", "raw peak RSS MiB", "runtime"):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    for rows in sizes:
        s = results["sizes"][str(rows)]
        b = s["best"]
        table.add_row(f"{rows:,}", f"{s['raw']['rows_per_s']:,.0f}", f"{b['rows_per_s']:,.0f}",
                      f"{s['ratio']:.2f}", f"{b['scoring_rows_per_s']:,.0f}",
                      f"{s['scoring_ratio']:.2f}", f"{b['peak_rss_mib']:,.0f}",
                      f"{s['raw']['peak_rss_mib']:,.0f}", b["runtime"])
    Console(width=160).print(table)
    small, large = results["sizes"][str(sizes[0])], results["sizes"][str(sizes[-1])]
    ratio_ok = large["ratio"] >= TARGET_RATIO
    growth = large["best"]["peak_rss_mib"] / small["best"]["peak_rss_mib"] - 1
    memory_ok = growth <= MEMORY_GROWTH
    results.update(ratio_met=ratio_ok, peak_growth=growth, memory_met=memory_ok)
    print(f"throughput at {sizes[-1]:,} rows: {large['ratio']:.0%} of the raw model's "
          f"(target >= {TARGET_RATIO:.0%}): {'MET' if ratio_ok else 'MISSED'}")
    print(f"peak RSS {sizes[0]:,} -> {sizes[-1]:,} rows: {small['best']['peak_rss_mib']:,.0f}"
          f" -> {large['best']['peak_rss_mib']:,.0f} MiB ({growth:+.0%}; target at most "
          f"{MEMORY_GROWTH:+.0%}): {'MET' if memory_ok else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
