"""Figure: a full drift and data-quality report on 1,000,000 rows x 25 columns.

Target: at most 3 s and 1 GiB peak memory for ``monitor()`` plus the HTML report on
1,000,000 current rows of 25 columns (20 numeric, 5 categorical), measured beside
Evidently 0.7 (``Report([DataDriftPreset(), DataSummaryPreset()])`` and ``save_html``) in
the same run; also at 200,000 rows. And at most 3 s for ``forgeline monitor MODEL
--current FILE`` as a whole process from the shell (interpreter start, imports, reading the
package and the file, the report), measured beside the same report in-process, so that the
start-up cost shows.

The data: a reference of ``--reference-rows`` rows (the training data) and current
samples of each ``--rows`` size from the same generator, with 5 numeric columns shifted
(by 0.5 standard deviation or a 1.5x scale) and 2 categorical distributions changed, about
1% missing values in 4 columns. Numeric shapes: normal, log-normal, uniform, exponential,
Poisson counts; categorical columns have 5, 12, 3, 60 and 2 levels. A prepare step (not
measured) writes them to Parquet and builds a model package whose profile comes from the
reference, as training does; a logistic regression on 20,000 reference rows is the model.

Each measurement runs in a fresh process: a small wrapper process starts the worker and
reads ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, the worker's peak resident
memory, whole process included (the interpreter, the libraries, the data as loaded). The
worker reads its Parquet files (Forgeline: the current sample and the model package;
Evidently: the current sample and the reference data, which it needs), then times the
report: Forgeline ``monitor(predictor, current)`` (drift with every statistic, quality,
PCA multivariate drift, 10 row windows) and its HTML report; Evidently ``Report.run`` and
``save_html``. The CPU time other processes took during each measurement is recorded too
(``_common.Neighbours``): on a shared 2-CPU machine it decides the figures. Evidently
runs in its own virtualenv (.venv-evidently, see the end of this docstring) with its own
pandas (<3: Evidently 0.7 does not import under pandas 3).

    python3.11 -m venv .venv-evidently
    .venv-evidently/bin/pip install "evidently>=0.7,<0.8" "pandas>=2.2,<3"
    .venv/bin/python benchmarks/bench_monitor.py [--rows 1000000 200000]
        [--reference-rows 200000] [--repeats 3] [--markdown benchmarks/out/bench_monitor.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"
TARGET_S, TARGET_MIB = 3.0, 1024.0
COMMAND = "forgeline monitor"  # the whole command, beside the same report in-process
SHAPES = ["normal"] * 6 + ["lognormal"] * 4 + ["uniform"] * 4 + ["exponential"] * 3 + \
    ["counts"] * 3
NUMERIC = [f"n{i}" for i in range(20)]
CATEGORICAL = {"c0": 5, "c1": 12, "c2": 3, "c3": 60, "c4": 2}
SHIFTED = {"n0": "shift", "n1": "scale", "n6": "shift", "n10": "shift", "n14": "scale",
           "c0": "reverse", "c1": "tilt"}
MISSING = ("n2", "n7", "c2", "c3")


# -- data (numpy and pandas only: both virtualenvs can run this) ------------------------------
def generate(rows: int, seed: int, shifted: bool) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for name, shape in zip(NUMERIC, SHAPES, strict=True):
        x = {"normal": lambda: rng.normal(50, 10, rows),
             "lognormal": lambda: rng.lognormal(2, 0.7, rows),
             "uniform": lambda: rng.uniform(0, 100, rows),
             "exponential": lambda: rng.exponential(8, rows),
             "counts": lambda: rng.poisson(4, rows).astype("float64")}[shape]()
        how = SHIFTED.get(name) if shifted else None
        if how == "shift":
            x += 0.5 * x.std()
        elif how == "scale":
            x = x.mean() + (x - x.mean()) * 1.5
        data[name] = x
    for name, levels in CATEGORICAL.items():
        p = 1 / np.arange(1, levels + 1)
        how = SHIFTED.get(name) if shifted else None
        if how == "reverse":
            p = p[::-1]
        elif how == "tilt":
            p = p * np.linspace(0.5, 2.0, levels)
        codes = rng.choice(levels, rows, p=p / p.sum())
        data[name] = np.array([f"{name}_{i}" for i in range(levels)], dtype=object)[codes]
    frame = pd.DataFrame(data)
    for name in MISSING:
        frame.loc[rng.random(rows) < 0.01, name] = None
    return frame


def prepare(folder: Path, sizes: list[int], reference_rows: int) -> None:
    """Write the reference, the current samples and the model package (not measured)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from forgeline.data.profile import build_profile, reference_extras
    from forgeline.data.schema import ColumnInfo, ColumnKind, Schema
    from forgeline.packaging import Signature, save_package

    reference = generate(reference_rows, 1, shifted=False)
    reference.to_parquet(folder / "reference.parquet", index=False)
    for rows in sizes:
        generate(rows, 2, shifted=True).to_parquet(folder / f"current-{rows}.parquet",
                                                   index=False)
    features = list(reference.columns)
    kinds = {c: ColumnKind.NUMERIC if c in NUMERIC else ColumnKind.CATEGORICAL
             for c in features}
    schema = Schema(tuple(ColumnInfo(c, kinds[c], str(reference[c].dtype), 0, 0.0)
                          for c in features), ColumnInfo("y", ColumnKind.CATEGORICAL,
                                                         "int64", 2, 0.0))
    fit = reference.iloc[:20_000].copy()
    fit["y"] = (fit["n0"] + fit["n3"] > 100).astype(int)
    model = Pipeline([("prep", ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL))])),
        ("model", LogisticRegression(max_iter=200))]).fit(fit[features], fit["y"])
    held_out = generate(20_000, 3, shifted=False)
    profile = build_profile(reference, schema)
    profile.update(reference_extras(model, reference, held_out, schema, "binary",
                                    list(model.classes_), profile=profile))
    signature = Signature.from_frame(reference, schema, "binary", list(model.classes_))
    save_package(folder / "model", model, signature, profile=profile,
                 metrics={"roc_auc": 0.9}, card="benchmark model")


# -- one measurement ---------------------------------------------------------------------------
def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_forgeline(folder: Path, rows: int) -> dict[str, Any]:
    import pandas as pd

    from forgeline.monitoring import MonitorConfig, monitor
    from forgeline.packaging import Predictor, load_package
    from forgeline.reports import render_monitor_report

    predictor = Predictor(load_package(folder / "model"))
    current = pd.read_parquet(folder / f"current-{rows}.parquet")
    loaded = _rss_mib()
    start = time.perf_counter()
    result = monitor(predictor, current, config=MonitorConfig())
    computed = time.perf_counter()
    render_monitor_report(result, folder / f"forgeline-{rows}.html")
    done = time.perf_counter()
    drifted = sorted(n for n, f in result.features.items() if f.drifted)
    return {"compute_s": computed - start, "html_s": done - computed, "wall_s": done - start,
            "rss_after_load_mib": loaded, "drifted": drifted,
            "scores": {n: f.score for n, f in result.features.items()},
            "methods": {n: f.method for n, f in result.features.items()}}


def worker_evidently(folder: Path, rows: int) -> dict[str, Any]:
    import warnings

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    warnings.simplefilter("ignore")
    reference = pd.read_parquet(folder / "reference.parquet")
    current = pd.read_parquet(folder / f"current-{rows}.parquet")
    loaded = _rss_mib()
    start = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC,
                                categorical_columns=list(CATEGORICAL))
    snapshot = Report([DataDriftPreset(), DataSummaryPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition))
    computed = time.perf_counter()
    snapshot.save_html(str(folder / f"evidently-{rows}.html"))
    done = time.perf_counter()
    drifted, scores, methods = [], {}, {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config") or {}
        if str(config.get("type", "")).endswith("ValueDrift"):
            name, score = config["column"], float(metric["value"])
            method = str(metric["metric_name"]).split("method=")[1].split(",threshold")[0]
            threshold = float(config.get("threshold") or 0.1)
            scores[name], methods[name] = score, method
            if (score < threshold) if "p_value" in method else (score >= threshold):
                drifted.append(name)
    return {"compute_s": computed - start, "html_s": done - computed, "wall_s": done - start,
            "rss_after_load_mib": loaded, "drifted": sorted(drifted), "scores": scores,
            "methods": methods}


def measure_command(folder: Path, rows: int) -> dict[str, Any]:
    """``forgeline monitor`` as a user runs it: a whole process from the shell (interpreter
    start, imports, reading the model package and the file, the report), timed from here."""
    command = [str(Path(sys.executable).with_name("forgeline")), "monitor",
               str(folder / "model"), "--current", str(folder / f"current-{rows}.parquet"),
               "-o", str(folder / f"command-{rows}.html"), "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"forgeline monitor failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout)
    nan = float("nan")
    return {"compute_s": nan, "html_s": nan, "wall_s": wall, "rss_after_load_mib": nan,
            "drifted": sorted(n for n, f in result["features"].items() if f["drifted"]),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def measure(tool: str, folder: Path, rows: int) -> dict[str, Any]:
    """Run one worker in a child process; add its peak RSS (this process has no other)."""
    if tool == COMMAND:
        return measure_command(folder, rows)
    python = sys.executable if tool == "forgeline" else str(EVIDENTLY_PYTHON)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "DO_NOT_TRACK": "1",
           "EVIDENTLY_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([python, str(HERE), "--worker", tool, str(folder), str(rows)],
                          capture_output=True, text=True, env=env, check=False, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{tool} worker failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def _measured(tool: str, folder: Path, rows: int) -> dict[str, Any]:
    from _common import Neighbours

    with Neighbours() as neighbours:
        done = subprocess.run([sys.executable, str(HERE), "--measure", tool, str(folder),
                               str(rows)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:] or done.stdout[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["others_cpu"] = neighbours.other  # CPU share other processes took meanwhile
    return result


# -- the run -----------------------------------------------------------------------------------
def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _table(results: dict[int, dict[str, list[dict[str, Any]]]], reference_rows: int,
           machine: str, repeats: str) -> str:
    lines = [
        "## bench_monitor: drift and data-quality report vs Evidently 0.7", "",
        f"Machine: {machine}. Reference (training) data: {reference_rows:,} rows; current: "
        f"the rows below, 25 columns (20 numeric, 5 categorical). Median of the runs "
        f"({repeats}), each in a fresh process. Peak RSS is the whole worker process "
        "(interpreter, libraries, data as loaded) from getrusage(RUSAGE_CHILDREN); 'after "
        "load' is its RSS once the data is read, before the report.", "",
        "| rows | tool | report s (compute + HTML) | fastest s | compute s | HTML s | "
        "peak RSS MiB | RSS after load MiB | other processes' CPU | drifted columns |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for rows, tools in results.items():
        for tool, runs in tools.items():
            lines.append(
                f"| {rows:,} | {tool} | {_median(runs, 'wall_s'):.2f} | "
                f"{min(r['wall_s'] for r in runs):.2f} | "
                f"{_median(runs, 'compute_s'):.2f} | {_median(runs, 'html_s'):.2f} | "
                f"{max(r['peak_rss_mib'] for r in runs):.0f} | "
                f"{_median(runs, 'rss_after_load_mib'):.0f} | "
                f"{_median(runs, 'others_cpu'):.0%} | {', '.join(runs[0]['drifted'])} |")
    lines.append("")
    for rows, tools in results.items():
        if {"forgeline", COMMAND} <= set(tools):
            inside, whole = _median(tools["forgeline"], "wall_s"), _median(tools[COMMAND],
                                                                          "wall_s")
            lines.append(
                f"- {rows:,} rows: `forgeline monitor` as a whole process {whole:.2f} s "
                f"(target {TARGET_S:g} s: {'met' if whole <= TARGET_S else 'MISSED'}); the "
                f"same report in-process {inside:.2f} s, so starting the interpreter, "
                f"importing and reading the model package and the file cost "
                f"{whole - inside:.2f} s.")
        if {"forgeline", "evidently"} <= set(tools):
            ours, theirs = tools["forgeline"], tools["evidently"]
            lines.append(
                f"- {rows:,} rows: Forgeline {_median(ours, 'wall_s'):.2f} s vs Evidently "
                f"{_median(theirs, 'wall_s'):.2f} s "
                f"({_median(theirs, 'wall_s') / _median(ours, 'wall_s'):.1f}x faster), peak "
                f"{max(r['peak_rss_mib'] for r in ours):.0f} vs "
                f"{max(r['peak_rss_mib'] for r in theirs):.0f} MiB; same drifted columns: "
                f"{'yes' if ours[0]['drifted'] == theirs[0]['drifted'] else 'no'}.")
    return "\n".join(lines) + "\n"


def _machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 200_000])
    parser.add_argument("--reference-rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evidently-repeats", type=int, default=1,
                        help="Evidently takes minutes per 1M-row run; 1 by default.")
    parser.add_argument("--markdown", default=str(ROOT / "benchmarks/out/bench_monitor.md"))
    parser.add_argument("--json", default=str(ROOT / "benchmarks/out/bench_monitor.json"))
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "DIR", "ROWS"))
    parser.add_argument("--measure", nargs=3, metavar=("TOOL", "DIR", "ROWS"))
    args = parser.parse_args()
    if args.worker:
        tool, folder, rows = args.worker
        run = worker_forgeline if tool == "forgeline" else worker_evidently
        print(json.dumps(run(Path(folder), int(rows))))
        return
    if args.measure:
        tool, folder, rows = args.measure
        print(json.dumps(measure(tool, Path(folder), int(rows))))
        return
    tools = ["forgeline", COMMAND]
    if args.skip_evidently:
        print("Evidently skipped (--skip-evidently).")
    elif not EVIDENTLY_PYTHON.is_file():
        print(f"Evidently skipped: {EVIDENTLY_PYTHON} is missing (see the docstring).")
    else:
        tools.append("evidently")
    machine = _machine()
    print(f"machine: {machine}")
    sys.path.insert(0, str(HERE.parent))
    from _common import check_quiet

    check_quiet()
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-monitor-") as tmp:
        folder = Path(tmp)
        prepare(folder, args.rows, args.reference_rows)
        for rows in args.rows:
            results[rows] = {}
            for tool in tools:
                repeats = args.evidently_repeats if tool == "evidently" else args.repeats
                runs = [_measured(tool, folder, rows) for _ in range(repeats)]
                results[rows][tool] = runs
                wall, peak = _median(runs, "wall_s"), max(r["peak_rss_mib"] for r in runs)
                verdict = ("" if tool == "evidently" else
                           f"  [target {TARGET_S:g} s / {TARGET_MIB:.0f} MiB: "
                           f"{'met' if wall <= TARGET_S and peak <= TARGET_MIB else 'MISSED'}]")
                print(f"{rows:>9,} rows  {tool:<17} report {wall:6.2f} s (compute "
                      f"{_median(runs, 'compute_s'):.2f} + html {_median(runs, 'html_s'):.2f})"
                      f"  peak {peak:6.0f} MiB  others {_median(runs, 'others_cpu'):.0%} CPU"
                      f"  drifted {len(runs[0]['drifted'])}: "
                      f"{', '.join(runs[0]['drifted'])}{verdict}")
    counts = f"Forgeline {args.repeats}, Evidently {args.evidently_repeats}"
    text = _table(results, args.reference_rows, machine, counts)
    print(text)
    Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
    Path(args.markdown).write_text(text)
    Path(args.json).write_text(json.dumps({"machine": machine, "results": {
        str(k): v for k, v in results.items()}}, indent=2))


if __name__ == "__main__":
    main()
