"""Figure: single-row latency and batch throughput of a compiled LightGBM model beside
LightGBM's own predict and ONNX Runtime, on the same model (issue 16).

Published reference (lleaves' README, NYC taxi, one row): lleaves 9.6 us, ONNX Runtime
11 us, LightGBM 52 us. lleaves itself cannot run here (its last release needs llvmlite's
legacy pass manager, removed in llvmlite 0.45); Forgeline compiles with treelite + tl2cgen
(C, gcc), so the compiled column is tl2cgen's.

The model: Forgeline's training pipeline (category codes first, numbers as they are) with
a LightGBM binary classifier of ``--trees`` trees (31 leaves) fitted on ``--rows`` rows of
14 numeric and 2 categorical columns. Measured in this process, each over the same rows:

- **bare model** (the matrix after the ColumnTransformer, float64, one row as a 1 x 16
  array): LightGBM's ``Booster.predict``; the compiled estimator's ``predict_proba``
  (tl2cgen's predictor behind it); ONNX Runtime on the bare booster converted with
  onnxmltools (``InferenceSession.run``, float32 input as that converter declares it).
- **serving runtime** (a validated one-row DataFrame in, labels and probabilities out,
  what ``forgeline serve`` runs per request, as ``select_runtime`` builds it): the LightGBM
  pipeline natively (scikit-learn's ColumnTransformer, then LightGBM), the compiled
  pipeline as "auto" serves it (the ColumnTransformer as an ONNX graph, then the compiled
  trees), and the LightGBM pipeline converted to ONNX as a whole.
- **batch**: 10,000 rows in one call, rows/s, for each of the above.

p50/p99 over ``--calls`` single-row calls (after 300 warm-up calls), each on another row.
Also printed: the time to compile the model cold (an empty cache) and the library's size.

    .venv/bin/python benchmarks/bench_compiled.py [--trees 300] [--calls 5000] [--json F]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import check_quiet, percentile, print_machine, ratio, scratch_dir, write_json

_REFERENCE_US = {"compiled (lleaves)": 9.6, "ONNX Runtime": 11.0, "LightGBM": 52.0}


def _data(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(14)})
    data["region"] = rng.choice([f"r{i}" for i in range(12)], rows)
    data["channel"] = rng.choice(["web", "app", "shop", "phone"], rows)
    data.loc[rng.random(rows) < 0.03, "x3"] = np.nan
    signal = (data.x0 + 0.5 * data.x1 * data.x2 - data.x4.abs() + data.region.isin(
        ["r1", "r5", "r7"]) + 0.3 * (data.channel == "app") + rng.normal(0, 0.7, rows))
    data["label"] = (signal > 0.4).astype(int)
    return data


def _latency(fn: Callable[[int], Any], calls: int) -> dict[str, float]:
    for i in range(300):
        fn(i)
    times = []
    for i in range(calls):
        start = time.perf_counter_ns()
        fn(i)
        times.append((time.perf_counter_ns() - start) / 1000)
    return {"p50_us": percentile(times, 50), "p99_us": percentile(times, 99)}


def _throughput(fn: Callable[[], Any], rows: int, repeats: int = 5) -> float:
    fn()
    best = min(_timed(fn) for _ in range(repeats))
    return rows / best


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--rows", type=int, default=20_000, help="training rows")
    parser.add_argument("--calls", type=int, default=5000, help="single-row calls per engine")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    print_machine()
    check_quiet()
    with scratch_dir("compiled") as folder:
        os.environ["FORGELINE_CACHE_DIR"] = str(folder / "cache")
        results = _run(args, folder)
    write_json(args.json, "compiled", results)


def _run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    import onnxruntime
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    from forgeline.data.inference import infer_schema
    from forgeline.entities import Task
    from forgeline.optimization.compile import compile_candidates
    from forgeline.packaging import Signature, load_package, save_package
    from forgeline.packaging.predictor import Predictor
    from forgeline.serving.runtime import select_runtime
    from forgeline.training.plan import ModelPlan

    data = _data(args.rows + 10_000)
    train, test = data[:args.rows], data[args.rows:].reset_index(drop=True)
    features = [c for c in data.columns if c != "label"]
    schema = infer_schema(train, "label")
    plan = ModelPlan(Task.BINARY, schema, tuple(features), "roc_auc", 0, False)
    teacher = plan.pipeline("lightgbm", {"n_estimators": args.trees}).fit(
        train[features], train.label)
    booster = teacher.steps[-1][1].booster_
    matrix = np.ascontiguousarray(teacher[:-1].transform(test[features]), dtype=np.float64)
    print(f"model: LightGBM, {booster.num_trees()} trees, {matrix.shape[1]} columns after "
          f"the ColumnTransformer ({len(features)} inputs, 2 categorical)")

    start = time.perf_counter()
    [candidate] = compile_candidates(teacher)
    compiled_pipeline = candidate.model
    compiled = compiled_pipeline.steps[-1][1]
    compiled.predict_proba(matrix[:1])
    compile_s = time.perf_counter() - start
    library = next((folder / "cache" / "compiled").glob("*/model.so"))
    print(f"compile (cold cache): {compile_s:.1f} s; library {library.stat().st_size / 1e6:.2f} "
          f"MB; LightGBM text model {len(compiled.model_text_) / 1e6:.2f} MB")
    worst = float(np.max(np.abs(compiled.predict_proba(matrix)[:, 1] - booster.predict(matrix))))
    print(f"compiled vs LightGBM on 10,000 rows: max |delta p| = {worst:.2e}")

    onx = convert_lightgbm(booster, initial_types=[("input", FloatTensorType(
        [None, matrix.shape[1]]))], zipmap=False, target_opset=15)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(onx.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    matrix32 = matrix.astype(np.float32)

    signature = Signature.from_frame(train[features], schema, "binary",
                                     list(teacher.classes_))
    for name, model in (("lightgbm", teacher), ("compiled", compiled_pipeline)):
        save_package(folder / name, model, signature, profile={}, metrics={}, card="")
    runtimes = {"lightgbm": select_runtime(Predictor(load_package(folder / "lightgbm")),
                                           "native"),
                "compiled": select_runtime(Predictor(load_package(folder / "compiled"))),
                "onnx": select_runtime(Predictor(load_package(folder / "lightgbm")), "onnx")}
    for name, runtime in runtimes.items():
        print(f"serving runtime {name}: {runtime.detail}")
    frames = [signature.validate(test[features].iloc[[i]]) for i in range(len(test))]
    batch = signature.validate(test[features])

    n = len(test)
    bare = {
        "LightGBM": (lambda i: booster.predict(matrix[i % n:i % n + 1], num_threads=1),
                     lambda: booster.predict(matrix, num_threads=1)),
        "compiled (tl2cgen)": (lambda i: compiled.predict_proba(matrix[i % n:i % n + 1]),
                               lambda: compiled.predict_proba(matrix)),
        "ONNX Runtime": (lambda i: session.run(None, {"input": matrix32[i % n:i % n + 1]}),
                         lambda: session.run(None, {"input": matrix32})),
    }
    serving = {
        "LightGBM": runtimes["lightgbm"], "compiled (tl2cgen)": runtimes["compiled"],
        "ONNX Runtime": runtimes["onnx"],
    }
    results: dict[str, Any] = {"trees": booster.num_trees(), "compile_s": compile_s,
                               "library_bytes": library.stat().st_size, "bare": {},
                               "serving": {}}
    print(f"\nsingle row ({args.calls} calls) and 10,000-row batch, one thread:")
    print(f"{'':22} {'bare p50':>9} {'p99':>8} {'rows/s':>11}   "
          f"{'serving p50':>11} {'p99':>8} {'rows/s':>9}")
    for name, (one, many) in bare.items():
        b = {**_latency(one, args.calls), "rows_per_s": _throughput(many, n)}
        runtime = serving[name]
        s = {**_latency(lambda i, r=runtime: r.predict(frames[i % n]), args.calls),
             "rows_per_s": _throughput(lambda r=runtime: r.predict(batch), n)}
        results["bare"][name], results["serving"][name] = b, s
        print(f"{name:22} {b['p50_us']:8.1f}us {b['p99_us']:6.1f}us {b['rows_per_s']:11,.0f}"
              f"   {s['p50_us']:10.1f}us {s['p99_us']:6.1f}us {s['rows_per_s']:9,.0f}")
    lgb_us = results["bare"]["LightGBM"]["p50_us"]
    ort_us = results["bare"]["ONNX Runtime"]["p50_us"]
    ours = results["bare"]["compiled (tl2cgen)"]["p50_us"]
    print(f"\nbare single row: compiled {ours:.1f} us = {ratio(lgb_us, ours)} faster than "
          f"LightGBM ({lgb_us:.1f} us), ONNX Runtime {ort_us:.1f} us")
    ref = _REFERENCE_US
    print(f"published (lleaves, NYC taxi): compiled {ref['compiled (lleaves)']} us = "
          f"{ratio(ref['LightGBM'], ref['compiled (lleaves)'])} faster than LightGBM "
          f"({ref['LightGBM']} us), ONNX Runtime {ref['ONNX Runtime']} us")
    return results


if __name__ == "__main__":
    main()
