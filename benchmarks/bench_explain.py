"""Figure: explaining one row of a 100-tree LightGBM model (issue 15, Explanations).

Target: ``POST /explain`` for a single row under 5 ms, and ``/predict`` without
``explain`` as fast as before any explanation was asked for.

The model: Forgeline's LightGBM pipeline (``ModelPlan.pipeline("lightgbm",
{"n_estimators": 100})``: its preprocessing, native categories) fitted on ``--rows``
synthetic card transactions (``forgeline.examples.fraud.generate``), saved as a model
package with its signature and profile, and served by ``forgeline serve PACKAGE --workers
1`` (default options) in its own process on loopback.

Measured in the same run, on the same rows (``--requests`` different test rows, one at a
time, after an unrecorded warm-up):

- HTTP, one client on a kept-alive connection (httpx): ``/predict`` on a fresh server (no
  explainer built; the second of two passes, the first lets the server settle), then
  ``/explain``, then ``/predict`` again (the explainer built and used): p50 and p99, the
  server process's CPU time per request (what the machine's other load inflates least:
  the latency a quiet machine would approach), and how much CPU other processes used.
- In process: the server's explainer (``build_explainer``: preprocessing through ONNX
  Runtime, checked equal to scikit-learn's) and the plain ``Explainer(predictor)``
  (scikit-learn's preprocessing), each ``.explain(row)`` (signature validation,
  preprocessing, LightGBM's ``pred_contrib``, summing onto the input columns, reasons not
  included); the reference: ``shap.TreeExplainer(model).shap_values(row)`` on the same
  fitted LightGBM model and the same rows, already preprocessed (so it does less than
  ``explain``); and each preprocessing alone. shap's values, summed onto the input
  columns, are checked equal to Forgeline's first, and the two explainers' to each other.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_explain.py [--rows 20000]
        [--requests 300] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    Neighbours,
    Server,
    check_quiet,
    free_port,
    percentile,
    print_machine,
    ratio,
    scratch_dir,
    tree_cpu_s,
    write_json,
)

TARGET_EXPLAIN_MS = 5.0
WARMUP = 30


def build_package(folder: Path, rows: int) -> tuple[Path, Any]:
    """Fit Forgeline's 100-tree LightGBM pipeline on fraud data; save it as a package."""
    from forgeline.data.inference import infer_schema
    from forgeline.data.profile import build_profile
    from forgeline.entities import Task
    from forgeline.examples.fraud import generate
    from forgeline.packaging import Signature, save_package
    from forgeline.training.plan import ModelPlan

    data = generate(rows + 2_000, seed=0).drop(columns=["txn_id", "customer_id"])
    train, test = data.iloc[:rows], data.iloc[rows:]
    schema = infer_schema(train, "is_fraud")
    features = tuple(c.name for c in schema.columns if c.kind.value != "id")
    plan = ModelPlan(Task.BINARY, schema, features, "roc_auc", 0, False)
    pipeline = plan.pipeline("lightgbm", {"n_estimators": 100})
    X = train[list(features)]
    pipeline.fit(X, train["is_fraud"])
    signature = Signature.from_frame(X, schema, "binary", list(pipeline.classes_))
    path = save_package(folder / "model", pipeline, signature,
                        profile=build_profile(train, schema), metrics={}, card="")
    return path, test[list(features)].reset_index(drop=True)


def timed(call: Callable[[int], Any], n: int) -> list[float]:
    """Milliseconds of ``call(i)`` for i in 0..n-1, after a warm-up."""
    for i in range(WARMUP):
        call(i % n)
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    print_machine()
    check_quiet()

    import warnings

    import httpx
    import orjson
    import shap

    # shap notes that its LightGBM binary output format changed; the values are the same
    warnings.filterwarnings("ignore", message="LightGBM binary classifier", category=UserWarning)

    from forgeline.packaging import load_model
    from forgeline.packaging.explain import Explainer
    from forgeline.serving.explaining import build_explainer

    results: dict[str, Any] = {"rows": args.rows, "requests": args.requests}
    with scratch_dir("explain") as folder:
        package, test = build_package(folder, args.rows)
        n = min(args.requests, len(test))
        rows = [orjson.loads(test.iloc[[i]].to_json(orient="records", date_format="iso"))
                for i in range(n)]
        predictor = load_model(package)
        frames = [predictor.prepare(r) for r in rows]

        # -- in process: Forgeline's explain beside shap.TreeExplainer ---------------------
        explainer = Explainer(predictor)
        fast = build_explainer(predictor, "bench")
        results["in_process_preprocessing"] = fast.preprocessing
        features, model = predictor.model[0], predictor.model[-1]
        tree = shap.TreeExplainer(model)
        transformed = [np.asarray(features.transform(f), dtype=float) for f in frames]
        ours = explainer.explain(frames[0])
        theirs = np.asarray(tree.shap_values(transformed[0])).reshape(1, -1)
        gap = float(np.abs(theirs @ explainer._matrix - ours.contributions).max())
        results["max_abs_difference_vs_shap"] = gap
        results["max_abs_difference_fast_vs_sklearn"] = max(
            float(np.abs(fast.explain(f).contributions - explainer.explain(f).contributions
                         ).max()) for f in frames)
        results["in_process"] = {
            f"explain, {fast.preprocessing} preprocessing (validate + preprocess + contrib)":
                summary(timed(lambda i: fast.explain(frames[i]), n)),
            "explain, scikit-learn preprocessing":
                summary(timed(lambda i: explainer.explain(frames[i]), n)),
            "shap.TreeExplainer.shap_values (preprocessed row)":
                summary(timed(lambda i: tree.shap_values(transformed[i]), n)),
            f"preprocessing alone, {fast.preprocessing}":
                summary(timed(lambda i: fast._transform(frames[i]), n)),
            "preprocessing alone, scikit-learn (ColumnTransformer.transform)":
                summary(timed(lambda i: features.transform(frames[i]), n)),
        }

        # -- over HTTP: a forgeline serve process --------------------------------------------
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "FORGELINE_HOME": str(folder / "home")}
        command = [sys.executable, "-c", "from forgeline.cli import app; app()", "serve",
                   str(package), "--workers", "1", "--host", "127.0.0.1", "--port", str(port)]
        bodies = [orjson.dumps({"records": r}) for r in rows]
        headers = {"Content-Type": "application/json"}
        with Server("forgeline", command, f"{url}/predict", bodies[0], folder / "serve.log",
                    env=env) as server, httpx.Client(base_url=url) as http:
            server.wait_ready()
            runtime = http.post("/predict", content=bodies[0], headers=headers).json()
            results["runtime"] = runtime["runtime"]

            def measure(route: str) -> dict[str, Any]:
                cpu = tree_cpu_s(server.pid)
                call = (post(route) if not route.startswith("/v2/health")
                        else lambda i: http.get(route).raise_for_status())
                with Neighbours() as others:
                    figures = summary(timed(call, n))
                figures["server_cpu_ms_per_request"] = (
                    (tree_cpu_s(server.pid) - cpu) * 1e3 / (n + WARMUP))
                figures["other_processes_cpu"] = others.other
                return figures

            def post(route: str) -> Callable[[int], Any]:
                def call(i: int) -> None:
                    answer = http.post(route, content=bodies[i], headers=headers)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{route}: {answer.status_code} {answer.text}")
                return call

            timed(post("/predict"), n)  # a first pass: the fresh server settles
            before = measure("/predict")
            explained = http.post("/explain", content=bodies[0], headers=headers).json()
            results["preprocessing"] = explained["preprocessing"]
            total = explained["explanations"][0]["base_value"] + sum(
                explained["explanations"][0]["contributions"].values())
            assert abs(total - ours.output[0]) < 1e-6, (total, ours.output[0])
            results["http"] = {
                "GET /v2/health/live (the HTTP floor)": measure("/v2/health/live"),
                "/predict (explainer never built)": before,
                "/explain": measure("/explain"),
                "/predict (after /explain)": measure("/predict"),
            }

    print(f"\nmodel: 100-tree LightGBM (Forgeline pipeline), {args.rows:,} training rows; "
          f"serving runtime {results['runtime']}; {n} single-row requests each")
    print(f"shap's values summed onto the input columns vs Forgeline's: max |difference| "
          f"{results['max_abs_difference_vs_shap']:.2e}")
    print(f"/explain's preprocessing: {results['preprocessing']}; its contributions vs "
          f"scikit-learn's preprocessing: max |difference| "
          f"{results['max_abs_difference_fast_vs_sklearn']:.2e}")
    print(f"{'measure':<72}{'p50 ms':>9}{'p99 ms':>9}{'server CPU ms':>15}{'others':>8}")
    for section in ("http", "in_process"):
        for name, figures in results[section].items():
            extra = (f"{figures['server_cpu_ms_per_request']:>15.3f}"
                     f"{figures['other_processes_cpu']:>8.0%}" if section == "http" else "")
            print(f"{name:<72}{figures['p50_ms']:>9.3f}{figures['p99_ms']:>9.3f}{extra}")
    http = results["http"]
    p50 = http["/explain"]["p50_ms"]
    print(f"\n/explain p50 {p50:.2f} ms: target < {TARGET_EXPLAIN_MS} ms -> "
          f"{'met' if p50 < TARGET_EXPLAIN_MS else 'NOT met'}")
    print("/predict after /explain vs before, p50: "
          + ratio(http["/predict (after /explain)"]["p50_ms"],
                  http["/predict (explainer never built)"]["p50_ms"]))
    inproc = results["in_process"]
    first = next(iter(inproc))
    print("in-process explain vs shap.TreeExplainer (p50): " + ratio(
        inproc[first]["p50_ms"],
        inproc["shap.TreeExplainer.shap_values (preprocessed row)"]["p50_ms"]))
    write_json(args.json, "explain", results)


if __name__ == "__main__":
    main()
