"""Figure: single-row requests to ``forgeline serve`` at 32 connections (issue 4).

Target: at least 4,000 requests/s with p99 at most 20 ms, for a 100-tree
HistGradientBoostingClassifier on 20 numeric features, measured in the same run against
``mlflow models serve`` on the same fitted model and against a ceiling: a FastAPI app on
uvicorn that parses the same JSON body and returns a constant.

Every server runs 2 worker processes on loopback; the load is
``wrk -t2 -c32 -d{duration}s --latency --timeout 10s`` with a Lua script POSTing one row
as JSON (timeouts are counted as errors by wrk and left out of its latency figures, hence
the long timeout). The servers:

- **ceiling**: FastAPI + uvicorn (uvloop, httptools), 2 workers, ``orjson.loads`` of the
  body, a constant answer of the size of Forgeline's.
- **forgeline**: ``forgeline serve bench-hgb@champion --workers 2`` with the default
  options, which keep every prediction in the prediction log; ``forgeline (--no-log)``
  is the same without the log.
- **mlflow**: ``mlflow models serve -m models:/bench-hgb/1 --workers 2 --env-manager
  local`` (MLflow from .venv-bench, as ``pip install mlflow`` installs it), the same
  fitted pipeline logged with ``mlflow.sklearn.log_model`` and
  ``pyfunc_predict_fn="predict_proba"`` so that it computes what Forgeline answers; its
  body is ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``.
- **mlflow (trees alone)**: the same, serving the estimator fitted on the raw features
  without Forgeline's pipeline (median imputer + scaler, whose ColumnTransformer costs
  scikit-learn several milliseconds on one row): the issue's bare model, as most MLflow
  users would log it (``--skip-trees-alone`` leaves it out).

Forgeline's body is ``{"records": [{"f00": ..., ...}]}``. Each server's answer to the
benchmark row is checked against the fitted pipeline's ``predict_proba`` before any load.
All servers are started first (one at a time; each must answer, then go idle), then
measured in turn, ``--rounds`` times (the median round by requests/s is reported), each
measurement after an unrecorded warm-up. In the same run, the model's own latency is
measured in this process: the pipeline's ``predict_proba`` on 1 and 64 rows (and on 1 row
with one thread, and the trees alone), and the ONNX Runtime session Forgeline serves (when
it serves one) on 1 and 64 rows.

The machine's other load is recorded per measurement (CPU busy time not used by the
server, wrk or this script): on 2 shared CPUs it decides the figures, and the ratio to the
ceiling measured beside them is the figure to trust.

Also, in the same run (``--skip-oip`` leaves it out, ``--oip-only`` measures nothing
else): the Open Inference Protocol v2 in its three forms against one ``forgeline serve
--workers 1 --grpc-port`` of the same model: JSON tensors, the binary tensor data
extension (binary inputs and outputs, what ``tritonclient.http`` sends by default) and
gRPC with raw contents (what ``tritonclient.grpc`` sends), for requests of 1, 100 and
1,000 rows of the 20 FP64 features. One client, a closed loop, the same for the three:
each request is prepared once and sent as bytes (``http.client`` on a kept-alive
connection; a grpcio channel without serializers), so the figures are the server's and
the transport's, not the client library's. Reported: median latency, microseconds per row,
and the ratios JSON / binary and JSON / gRPC. Each form's answer is checked against the
pipeline's ``predict_proba`` first.

    .venv/bin/python benchmarks/bench_serve.py [--duration 20] [--rounds 1] [--quick]
        [--skip-oip | --oip-only] [--oip-duration 5]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    BENCH_PYTHON,
    BENCH_VENV,
    SERVE_FEATURES,
    SERVE_MODEL,
    SETUP_HINT,
    Server,
    build_serve_model,
    busy_cpu_s,
    check_quiet,
    free_port,
    hgb_rows,
    mlflow_available,
    print_machine,
    run_wrk,
    scratch_dir,
    sqlite_uri,
    tree_cpu_s,
    tree_rss_mib,
    write_json,
    wrk_script,
)

HERE = Path(__file__).resolve()
TREES_ALONE = f"{SERVE_MODEL}-trees"  # MLflow also serves the estimator without the pipeline
HGB_TYPES = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
TARGET_RPS, TARGET_P99_MS = 4_000.0, 20.0
CONNECTIONS, THREADS, WORKERS = 32, 2, 2
# the answer of the ceiling app: Forgeline's for one row, with fixed values
CEILING_ANSWER = (b'{"model":"bench-hgb","version":1,"runtime":"onnxruntime","request_id":'
                  b'"00000000000000000000000000000000","predictions":[1],"probabilities":'
                  b'[[0.25,0.75]],"classes":[0,1]}')


def make_ceiling_app() -> Any:
    """The ceiling: parse the JSON body, answer a constant (uvicorn --factory loads it)."""
    import orjson
    from fastapi import FastAPI, Request, Response

    app = FastAPI()

    async def predict(request):  # type: ignore[no-untyped-def]
        orjson.loads(await request.body())
        return Response(CEILING_ANSWER, media_type="application/json")

    # set here, not as an annotation: this module's annotations are strings (PEP 563),
    # which FastAPI would look up in the module's globals, where Request is not
    predict.__annotations__ = {"request": Request, "return": Response}
    app.post("/predict")(predict)
    return app


def the_row() -> dict[str, float]:
    x, _ = hgb_rows(1, 2024)
    return {name: round(float(v), 6) for name, v in zip(SERVE_FEATURES, x[0], strict=True)}


def bodies(row: dict[str, float]) -> dict[str, bytes]:
    records = json.dumps({"records": [row]}).encode()
    split = json.dumps({"dataframe_split": {"columns": list(row),
                                            "data": [list(row.values())]}}).encode()
    return {"forgeline": records, "ceiling": records, "mlflow": split}


# -- MLflow: run with .venv-bench's interpreter ----------------------------------------------
def mlflow_log(pickled: Path, folder: Path) -> dict[str, Any]:
    """Log and register the pickled models with MLflow (runs in .venv-bench): the pipeline
    as ``bench-hgb``, the trees alone as ``bench-hgb-trees``."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    models = pickle.loads(pickled.read_bytes())
    sample = pd.DataFrame(hgb_rows(50, 5)[0], columns=list(SERVE_FEATURES))
    uri = sqlite_uri(folder / "mlflow.db")
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench-serving",
                                          artifact_location=(folder / "mlartifacts").as_uri())
    found = {}
    for name, model in models.items():
        with mlflow.start_run(experiment_id=experiment):
            # MLflow's default format (skops) asks to trust the types it cannot check alone
            mlflow.sklearn.log_model(
                model, name="model", pyfunc_predict_fn="predict_proba",
                signature=infer_signature(sample, model.predict_proba(sample)),
                registered_model_name=name, skops_trusted_types=HGB_TYPES)
        found[name] = f"models:/{name}/1"
    return {"mlflow": mlflow.__version__, "tracking_uri": uri, "model_uris": found}


def log_to_mlflow(models: dict[str, Any], folder: Path) -> dict[str, Any] | None:
    pickled = folder / "models.pkl"
    pickled.write_bytes(pickle.dumps(models))
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([str(BENCH_PYTHON), str(HERE), "--mlflow-log", str(pickled),
                           str(folder)], capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    if done.returncode != 0:
        print(f"MLflow reference skipped: logging the model failed:\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_trees_alone(pipeline: Any, rows: int, seed: int = 0) -> Any:
    """The pipeline's estimator fitted on the raw features of the same training rows: the
    issue's "HistGradientBoostingClassifier on 20 numeric features" alone. Its binning is
    by rank, so the scaler changes nothing: it predicts what the pipeline predicts."""
    import pandas as pd
    from sklearn.base import clone

    x, y = hgb_rows(rows, seed)
    return clone(pipeline.named_steps["model"]).fit(
        pd.DataFrame(x, columns=list(SERVE_FEATURES)), y)


# -- the model's own latency ----------------------------------------------------------------
def _latency_ms(fn: Any, repeats: int) -> dict[str, float]:
    for _ in range(max(3, repeats // 10)):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99)]}


def model_latency(pipeline: Any, trees: Any, package: Path, quick: bool) -> dict[str, Any]:
    import pandas as pd

    from forgeline.packaging import load_model
    from forgeline.serving.runtime import select_runtime

    one = pd.DataFrame([the_row()])
    many = pd.DataFrame(hgb_rows(64, 7)[0], columns=list(SERVE_FEATURES))
    repeats = 100 if quick else 400
    from threadpoolctl import threadpool_limits

    out: dict[str, Any] = {
        "sklearn_1_row": _latency_ms(lambda: pipeline.predict_proba(one), repeats),
        "sklearn_64_rows": _latency_ms(lambda: pipeline.predict_proba(many), repeats // 4),
        "trees_alone_1_row": _latency_ms(lambda: trees.predict_proba(one), repeats)}
    # scikit-learn's trees run one OpenMP region per tree, each waiting for every thread:
    # on a busy machine one thread is much faster, and a server worker has one core anyway
    with threadpool_limits(1):
        out["sklearn_1_row_1_thread"] = _latency_ms(lambda: pipeline.predict_proba(one),
                                                    repeats)
    predictor = load_model(package)
    runtime = select_runtime(predictor, "auto")
    out["runtime"] = runtime.name
    out["runtime_detail"] = runtime.detail
    if runtime.name == "onnxruntime":
        frame_one, frame_many = predictor.signature.validate(one), predictor.signature.validate(
            many)
        out["onnx_1_row"] = _latency_ms(lambda: runtime.predict(frame_one), repeats * 5)
        out["onnx_64_rows"] = _latency_ms(lambda: runtime.predict(frame_many), repeats)
    return out


# -- servers and load -------------------------------------------------------------------------
def servers(model: Any, folder: Path, mlflow_info: dict[str, Any] | None,
            body: dict[str, bytes]) -> list[Server]:
    forgeline = str(Path(sys.executable).with_name("forgeline"))
    found: list[Server] = []
    port = free_port()
    found.append(Server(
        "ceiling", [sys.executable, "-m", "uvicorn", "--factory", "bench_serve:make_ceiling_app",
                    "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(WORKERS), "--loop", "uvloop", "--http", "httptools",
                    "--no-access-log", "--log-level", "warning"],
        f"http://127.0.0.1:{port}/predict", body["ceiling"], folder / "ceiling.log"))
    for name, extra in (("forgeline", []), ("forgeline --no-log", ["--no-log"])):
        port = free_port()
        found.append(Server(
            name, [forgeline, "serve", model.ref, "--workers", str(WORKERS), "--host",
                   "127.0.0.1", "--port", str(port), *extra],
            f"http://127.0.0.1:{port}/predict", body["forgeline"],
            folder / f"{name.replace(' ', '')}.log", env=model.env()))
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "PYTHONWARNINGS": "ignore",
           "PATH": f"{BENCH_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    for registered, uri in (mlflow_info or {}).get("model_uris", {}).items():
        name = "mlflow" if registered == SERVE_MODEL else "mlflow (trees alone)"
        port = free_port()
        found.append(Server(
            name, [str(BENCH_VENV / "bin" / "mlflow"), "models", "serve", "-m", uri,
                   "--workers", str(WORKERS), "--env-manager", "local", "--host",
                   "127.0.0.1", "--port", str(port)],
            f"http://127.0.0.1:{port}/invocations", body["mlflow"],
            folder / f"{registered}.log", cwd=folder,
            env={**env, "MLFLOW_TRACKING_URI": mlflow_info["tracking_uri"]}))
    return found


def check_answer(name: str, answer: Any, expected: float) -> tuple[bool, str]:
    """Whether a server's answer to the benchmark row is the model's (or the constant)."""
    if name == "ceiling":
        ok = answer == json.loads(CEILING_ANSWER)
        return ok, "the constant"
    if name.startswith("forgeline"):
        got = float(answer["probabilities"][0][1])
        detail = f"P(1)={got:.6f}, runtime {answer.get('runtime')}"
    else:
        got = float(answer["predictions"][0][1])
        detail = f"P(1)={got:.6f}"
    # the trees alone bin the raw values, the pipeline the scaled ones: the same up to
    # rounding at a bin edge
    return abs(got - expected) <= (1e-3 if "trees" in name else 1e-6), detail


def measure(server: Server, script: Path, duration: float) -> dict[str, Any]:
    """One wrk run against ``server``, with its CPU and memory and the machine's other load."""
    cpu0, busy0, t0 = tree_cpu_s(server.pid), busy_cpu_s(), time.monotonic()
    own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = time.process_time()
    result = run_wrk(server.url, script, duration, CONNECTIONS, THREADS)
    own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - t0
    server_cpu = tree_cpu_s(server.pid) - cpu0
    wrk_cpu = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    others = busy_cpu_s() - busy0 - server_cpu - wrk_cpu - (time.process_time() - self0)
    cpus = os.cpu_count() or 1
    rss = tree_rss_mib(server.pid)
    result.update(server_cpu_share=server_cpu / (wall * cpus),
                  wrk_cpu_share=wrk_cpu / (wall * cpus),
                  others_cpu_share=max(0.0, others) / (wall * cpus),
                  server_rss_mib=sum(rss.values()), server_processes=len(rss))
    return result


# -- OIP v2: JSON vs binary tensors vs gRPC ------------------------------------------------
OIP_ROWS = (1, 100, 1000)  # rows per request; the model's 20 features make them wide


def oip_requests(rows: int) -> tuple[bytes, tuple[bytes, int], bytes, Any]:
    """One request of ``rows`` rows in each form: OIP JSON, OIP binary (the body and its
    JSON part's length) and a serialized gRPC ``ModelInferRequest``; and the rows."""
    import numpy as np
    import orjson

    from forgeline.serving.oip_grpc import grpc_predict_v2_pb2 as pb

    x = hgb_rows(rows, 11)[0]
    columns = [np.ascontiguousarray(x[:, j]) for j in range(x.shape[1])]
    json_body = orjson.dumps({"inputs": [
        {"name": name, "shape": [rows], "datatype": "FP64", "data": column}
        for name, column in zip(SERVE_FEATURES, columns, strict=True)]},
        option=orjson.OPT_SERIALIZE_NUMPY)
    header = orjson.dumps({"inputs": [
        {"name": name, "shape": [rows], "datatype": "FP64",
         "parameters": {"binary_data_size": rows * 8}} for name in SERVE_FEATURES],
        "parameters": {"binary_data_output": True}})
    binary_body = header + b"".join(c.astype("<f8").tobytes() for c in columns)
    request = pb.ModelInferRequest(model_name=SERVE_MODEL)
    for name, column in zip(SERVE_FEATURES, columns, strict=True):
        request.inputs.add(name=name, datatype="FP64", shape=[rows])
        request.raw_input_contents.append(column.astype("<f8").tobytes())
    return json_body, (binary_body, len(header)), request.SerializeToString(), x


def oip_clients(http_port: int, grpc_port: int) -> tuple[Any, Any, Any]:
    """Three ways to send a prepared request and get the answer's bytes back: the same
    closed loop for each, with as little client work as possible (bytes in, bytes out)."""
    import http.client

    import grpc

    path = f"/v2/models/{SERVE_MODEL}/infer"
    connection = http.client.HTTPConnection("127.0.0.1", http_port)

    def post(body: bytes, header_length: int | None = None) -> tuple[bytes, str | None]:
        headers = {"Content-Type": "application/json" if header_length is None
                   else "application/octet-stream"}
        if header_length is not None:
            headers["Inference-Header-Content-Length"] = str(header_length)
        try:
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            connection.close()  # the server closed a connection left idle (keep-alive 5 s)
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"OIP answered {response.status}: {data[:300]!r}")
        return data, response.getheader("Inference-Header-Content-Length")

    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=[
        ("grpc.max_receive_message_length", -1)])
    # no serializers: the prepared request's bytes go as they are
    infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
    return post, infer, channel


def check_oip(answers: dict[str, Any], expected: Any) -> None:
    """Each form's answer is the model's ``predict_proba``."""
    import numpy as np
    import orjson

    from forgeline.serving.oip_grpc import grpc_predict_v2_pb2 as pb

    got = {}
    body, _ = answers["json"]
    got["json"] = np.array(orjson.loads(body)["outputs"][1]["data"])
    body, length = answers["binary"]
    header = orjson.loads(body[:int(length)])
    start = header["outputs"][0]["parameters"]["binary_data_size"]
    got["binary"] = np.frombuffer(body[int(length) + start:], "<f8")
    got["grpc"] = np.frombuffer(pb.ModelInferResponse.FromString(answers["grpc"])
                                .raw_output_contents[1], "<f8")
    for form, values in got.items():
        if not np.allclose(values, expected.ravel(), rtol=0, atol=1e-6):
            raise SystemExit(f"OIP {form} answers wrongly; not measured.")


def measure_oip(model: Any, folder: Path, duration_s: float) -> dict[str, Any]:
    """Closed-loop latency of one client per form, for each request size in OIP_ROWS."""
    import pandas as pd

    forgeline = str(Path(sys.executable).with_name("forgeline"))
    http_port, grpc_port = free_port(), free_port()
    one_row = oip_requests(1)[0]
    server = Server("forgeline oip", [forgeline, "serve", model.ref, "--workers", "1",
                                      "--host", "127.0.0.1", "--port", str(http_port),
                                      "--grpc-port", str(grpc_port), "--no-log"],
                    f"http://127.0.0.1:{http_port}/v2/models/{SERVE_MODEL}/infer", one_row,
                    folder / "oip.log", env=model.env())
    results: dict[str, Any] = {"server": " ".join(server.command), "sizes": {}}
    with server:
        server.wait_ready()
        post, infer, channel = oip_clients(http_port, grpc_port)
        try:
            for rows in OIP_ROWS:
                json_body, (binary_body, length), grpc_body, x = oip_requests(rows)
                expected = model.pipeline.predict_proba(pd.DataFrame(x, columns=list(
                    SERVE_FEATURES)))
                sends = {"json": partial(post, json_body),
                         "binary": partial(post, binary_body, length),
                         "grpc": partial(infer, grpc_body)}
                check_oip({form: send() for form, send in sends.items()}, expected)
                entry: dict[str, Any] = {"json_bytes": len(json_body),
                                         "binary_bytes": len(binary_body),
                                         "grpc_bytes": len(grpc_body)}
                for form, send in sends.items():
                    entry[form] = _closed_loop(send, duration_s, rows)
                results["sizes"][rows] = entry
                print(f"  OIP {rows:>5} rows: " + ", ".join(
                    f"{form} {entry[form]['us_per_row']:,.1f} us/row" for form in sends),
                      flush=True)
        finally:
            channel.close()
    return results


def _closed_loop(send: Any, duration_s: float, rows: int) -> dict[str, float]:
    for _ in range(10):  # unrecorded warm-up
        send()
    times: list[float] = []
    end = time.perf_counter() + duration_s
    while time.perf_counter() < end or len(times) < 20:
        t0 = time.perf_counter()
        send()
        times.append(time.perf_counter() - t0)
    times.sort()
    median_s = statistics.median(times)
    return {"requests": len(times), "median_ms": median_s * 1000,
            "p99_ms": times[int(len(times) * 0.99)] * 1000,
            "us_per_row": median_s * 1e6 / rows, "rows_per_s": rows / median_s}


def report_oip(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="OIP v2 inference, one closed-loop client per form, 20 FP64 inputs, "
                        "1 worker: median latency (us per row)")
    for column in ("rows/request", "JSON ms", "binary ms", "gRPC ms", "JSON us/row",
                   "binary us/row", "gRPC us/row", "JSON / binary", "JSON / gRPC",
                   "body bytes JSON / binary"):
        table.add_column(column, justify="right")
    for rows, e in results["sizes"].items():
        forms = ("json", "binary", "grpc")
        table.add_row(str(rows), *(f"{e[f]['median_ms']:.2f}" for f in forms),
                      *(f"{e[f]['us_per_row']:,.1f}" for f in forms),
                      f"{e['json']['median_ms'] / e['binary']['median_ms']:.2f}",
                      f"{e['json']['median_ms'] / e['grpc']['median_ms']:.2f}",
                      f"{e['json_bytes']:,} / {e['binary_bytes']:,}")
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unrecorded seconds first")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every server this many times, in turn")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 5 s per server, 1 s warm-up, a smaller training set")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--skip-trees-alone", action="store_true",
                        help="do not serve the trees without the pipeline with MLflow")
    parser.add_argument("--skip-oip", action="store_true",
                        help="leave out the OIP v2 measurements (JSON vs binary vs gRPC)")
    parser.add_argument("--oip-only", action="store_true",
                        help="only the OIP v2 measurements (and the model's own latency)")
    parser.add_argument("--oip-duration", type=float, default=None,
                        help="seconds per OIP form and request size (default 5, 1 with --quick)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--mlflow-log", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mlflow_log:
        print(json.dumps(mlflow_log(Path(args.mlflow_log[0]), Path(args.mlflow_log[1]))))
        return 0
    if args.quick:
        args.duration, args.warmup = min(args.duration, 5.0), min(args.warmup, 1.0)
    print_machine()
    busy = check_quiet()
    results: dict[str, Any] = {"target_rps": TARGET_RPS, "target_p99_ms": TARGET_P99_MS,
                               "connections": CONNECTIONS, "wrk_threads": THREADS,
                               "workers": WORKERS, "duration_s": args.duration,
                               "cpu_busy_before": busy, "servers": {}}
    with scratch_dir("serve") as folder:
        started = time.perf_counter()
        training_rows = 5_000 if args.quick else 20_000
        model = build_serve_model(folder / "home", rows=training_rows)
        print(f"model: {model.ref} (HGB, {model.pipeline.named_steps['model'].n_iter_} trees, "
              f"{len(SERVE_FEATURES)} features), registered in "
              f"{time.perf_counter() - started:.1f} s")
        mlflow_info, trees = None, None
        if args.skip_mlflow:
            print("MLflow reference skipped (--skip-mlflow).")
        elif not mlflow_available():
            print(f"MLflow reference skipped: {BENCH_VENV} is missing; {SETUP_HINT}.")
        else:
            trees = fit_trees_alone(model.pipeline, training_rows)
            models = {SERVE_MODEL: model.pipeline}
            if not args.skip_trees_alone:
                models[TREES_ALONE] = trees
            mlflow_info = log_to_mlflow(models, folder)
        results["mlflow"] = mlflow_info

        import pandas as pd

        row = the_row()
        expected = float(model.pipeline.predict_proba(pd.DataFrame([row]))[0, 1])
        body = bodies(row)
        if trees is None:
            trees = fit_trees_alone(model.pipeline, training_rows)
        latency = model_latency(model.pipeline, trees, model.package, args.quick)
        results["model_latency"] = latency
        print(f"model latency (median): scikit-learn {latency['sklearn_1_row']['median_ms']:.2f}"
              f" ms for 1 row, {latency['sklearn_64_rows']['median_ms']:.2f} ms for 64 rows"
              + (f"; ONNX Runtime {latency['onnx_1_row']['median_ms'] * 1000:.0f} us for 1 "
                 f"row, {latency['onnx_64_rows']['median_ms'] * 1000:.0f} us for 64 rows"
                 if "onnx_1_row" in latency else f"; {latency['runtime_detail']}"))

        running = [] if args.oip_only else servers(model, folder, mlflow_info, body)
        try:
            for server in running:
                server.__enter__()
                answer = server.wait_ready()
                ok, detail = check_answer(server.name, answer, expected)
                print(f"{server.name}: answers after {server.startup_s:.1f} s: {detail} "
                      f"({'correct' if ok else f'WRONG, expected P(1)={expected:.6f}'})",
                      flush=True)
                results["servers"][server.name] = {"startup_s": server.startup_s,
                                                   "answer_ok": ok, "answer": detail,
                                                   "command": " ".join(server.command),
                                                   "body": server.body.decode(), "runs": []}
                if not ok:
                    raise SystemExit(f"{server.name} answers wrongly; not measured.")
            scripts = {s.name: wrk_script(folder, s.name.replace(" ", ""), s.body)
                       for s in running}
            for round_ in range(args.rounds):
                for server in running:
                    if round_ == 0 and args.warmup > 0:
                        run_wrk(server.url, scripts[server.name], args.warmup, CONNECTIONS,
                                THREADS)
                    run = measure(server, scripts[server.name], args.duration)
                    results["servers"][server.name]["runs"].append(run)
                    print(f"  round {round_ + 1} {server.name:<20} {run['rps']:>9,.0f} req/s  "
                          f"p50 {run['p50_ms']:6.2f}  p99 {run['p99_ms']:7.2f} ms  non-2xx "
                          f"{run['non_2xx']}  socket errors {run['errors']}  server CPU "
                          f"{run['server_cpu_share']:.0%}, wrk {run['wrk_cpu_share']:.0%}, "
                          f"others {run['others_cpu_share']:.0%}", flush=True)
        finally:
            for server in reversed(running):
                if server.proc is not None:
                    server.__exit__(None, None, None)
        if not args.skip_oip:  # after the others: nothing else runs meanwhile
            oip_s = args.oip_duration or (1.0 if args.quick else 5.0)
            print(f"OIP v2: JSON vs binary tensors vs gRPC, {oip_s:g} s per form and size",
                  flush=True)
            results["oip"] = measure_oip(model, folder, oip_s)
    report(results)
    if "oip" in results:
        report_oip(results["oip"])
    (BENCH_DIR / "out").mkdir(exist_ok=True)
    write_json(args.json or str(BENCH_DIR / "out" / "bench_serve.json"), "bench_serve",
               results)
    return 0


def report(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    for entry in results["servers"].values():
        runs = sorted(entry["runs"], key=lambda r: r["rps"])
        entry["median"] = runs[(len(runs) - 1) // 2] if runs else None
    ceiling = results["servers"].get("ceiling", {}).get("median")
    mlflow = results["servers"].get("mlflow", {}).get("median")
    table = Table(title=f"single-row POST, wrk -t{THREADS} -c{CONNECTIONS} "
                        f"-d{results['duration_s']:g}s, {WORKERS} workers each")
    for column in ("server", "req/s", "p50 ms", "p90 ms", "p99 ms", "non-2xx", "socket errors",
                   "x ceiling", "x MLflow", "server RSS MiB", "others' CPU"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, entry in results["servers"].items():
        m = entry["median"]
        if m is None:
            continue
        table.add_row(name, f"{m['rps']:,.0f}", f"{m['p50_ms']:.2f}", f"{m['p90_ms']:.2f}",
                      f"{m['p99_ms']:.2f}", str(m["non_2xx"]), str(m["errors"]),
                      f"{m['rps'] / ceiling['rps']:.2f}" if ceiling else "-",
                      f"{m['rps'] / mlflow['rps']:.1f}" if mlflow else "-",
                      f"{m['server_rss_mib']:,.0f}", f"{m['others_cpu_share']:.0%}")
    Console(width=160).print(table)
    latency = results["model_latency"]
    print(f"model alone: scikit-learn predict_proba {latency['sklearn_1_row']['median_ms']:.2f}"
          f" ms/row (1 row; {latency['sklearn_1_row_1_thread']['median_ms']:.2f} ms with one "
          f"thread; the trees without the pipeline "
          f"{latency['trees_alone_1_row']['median_ms']:.2f} ms), "
          f"{latency['sklearn_64_rows']['median_ms']:.2f} ms per 64 rows"
          + (f"; ONNX Runtime {latency['onnx_1_row']['median_ms'] * 1000:.0f} us (1 row), "
             f"{latency['onnx_64_rows']['median_ms'] * 1000:.0f} us (64 rows)"
             if "onnx_1_row" in latency else ""))
    for name in ("forgeline", "forgeline --no-log"):
        m = results["servers"].get(name, {}).get("median")
        if not m:
            continue
        met = (m["rps"] >= TARGET_RPS and m["p99_ms"] <= TARGET_P99_MS and m["non_2xx"] == 0
               and m["errors"] == 0)
        results["servers"][name]["target_met"] = met
        print(f"{name}: {m['rps']:,.0f} req/s, p99 {m['p99_ms']:.1f} ms (target >= "
              f"{TARGET_RPS:,.0f} req/s, p99 <= {TARGET_P99_MS:g} ms, no errors): "
              f"{'MET' if met else 'MISSED'}"
              + (f"; {m['rps'] / ceiling['rps']:.0%} of the ceiling" if ceiling else "")
              + (f"; {m['rps'] / mlflow['rps']:.0f}x MLflow" if mlflow else ""))


if __name__ == "__main__":
    sys.exit(main())
