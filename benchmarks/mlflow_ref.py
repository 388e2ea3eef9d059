"""The MLflow reference measurements, run with .venv-bench's interpreter (never .venv's).

    .venv-bench/bin/python benchmarks/mlflow_ref.py log_metric --dir D --calls 500
    .venv-bench/bin/python benchmarks/mlflow_ref.py search --dir D --runs 10000 --metrics 20

Prints one JSON object on its last line; the forgeline benchmarks parse it. MLflow runs
on a SQLite file in ``--dir`` (its SqlAlchemyStore, as ``MlflowClient("sqlite:///...")``
gives). Only the standard library and MLflow are imported here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from _common import median, percentile, search_filter, search_order, search_run, ui_run

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def _client(folder: Path) -> Any:
    from mlflow import MlflowClient

    # Creating the tables (MLflow's migrations) takes seconds: done here, never timed.
    return MlflowClient(f"sqlite:///{(folder / 'mlflow.db').resolve()}")


def log_metric(args: argparse.Namespace) -> dict[str, Any]:
    """MLflow call-by-call ``log_metric`` and chunked ``log_batch`` on SQLite."""
    import mlflow
    from mlflow.entities import Metric

    client = _client(Path(args.dir))
    exp = client.create_experiment("bench")
    run_id = client.create_run(exp, run_name="calls").info.run_id
    for i in range(5):  # warm-up: first-call costs (SQLAlchemy compilation, caches)
        client.log_metric(run_id, "warmup", 0.5, step=i)
    start = time.perf_counter()
    for i in range(args.calls):
        client.log_metric(run_id, "loss", i * 1e-6, step=i)
    calls_s = time.perf_counter() - start
    stored = len(client.get_metric_history(run_id, "loss"))

    batch_run = client.create_run(exp, run_name="batch").info.run_id
    start = time.perf_counter()
    now = int(time.time() * 1000)
    for first in range(0, args.batch_points, 1000):  # MLflow accepts 1,000 metrics per batch
        client.log_batch(batch_run, metrics=[Metric("loss", i * 1e-6, now, i) for i in
                                             range(first, min(first + 1000, args.batch_points))])
    batch_s = time.perf_counter() - start
    batch_stored = len(client.get_metric_history(batch_run, "loss"))
    return {"mlflow": mlflow.__version__, "calls": args.calls, "calls_s": calls_s,
            "calls_stored": stored, "batch_points": args.batch_points, "batch_s": batch_s,
            "batch_stored": batch_stored}


def _api_populate(client: Any, exp: str, first: int, stop: int, n_metrics: int,
                  seed: int, make_run: Callable[..., Any] = search_run) -> None:
    from mlflow.entities import Metric, Param

    for i in range(first, stop):
        name, start_time, params, metrics = make_run(i, n_metrics, seed)
        run_id = client.create_run(exp, start_time=start_time, run_name=name).info.run_id
        client.log_batch(run_id, metrics=[Metric(k, v, ts, s) for k, v, s, ts in metrics],
                         params=[Param(k, v) for k, v in params.items()])


def _bulk_populate(store: Any, exp: str, sample_run: str, first: int, stop: int,
                   n_metrics: int, seed: int, make_run: Callable[..., Any] = search_run
                   ) -> None:
    """Insert runs into MLflow's own tables exactly as its API writes them.

    Every row copies the row MLflow itself wrote for ``sample_run`` (an API-created run)
    and changes only the ids, names and values, so the tables hold what create_run +
    log_batch would have written, only faster.
    """
    import uuid

    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )

    runs, tags, params, metrics, latest = (SqlRun.__table__, SqlTag.__table__,
                                           SqlParam.__table__, SqlMetric.__table__,
                                           SqlLatestMetric.__table__)
    with store.engine.begin() as conn:
        def one(table: sa.Table) -> dict[str, Any]:
            row = conn.execute(sa.select(table).where(table.c.run_uuid == sample_run)
                               .limit(1)).mappings().first()
            if row is None:
                raise RuntimeError(f"no {table.name} row for the sample run")
            return dict(row)

        run_t, metric_t, latest_t, param_t = one(runs), one(metrics), one(latest), one(params)
        tag_ts = [dict(r) for r in conn.execute(
            sa.select(tags).where(tags.c.run_uuid == sample_run)).mappings()]
        sample_name = run_t["name"]
        rows: dict[str, list[dict[str, Any]]] = {"r": [], "t": [], "p": [], "m": [], "l": []}

        def flush() -> None:
            for key, table in (("r", runs), ("t", tags), ("p", params), ("m", metrics),
                               ("l", latest)):
                if rows[key]:
                    conn.execute(table.insert(), rows[key])
                    rows[key] = []

        for i in range(first, stop):
            name, start_time, run_params, run_metrics = make_run(i, n_metrics, seed)
            rid = uuid.uuid4().hex
            rows["r"].append({**run_t, "run_uuid": rid, "name": name, "start_time": start_time,
                              "experiment_id": int(exp),
                              "artifact_uri": run_t["artifact_uri"].replace(sample_run, rid)})
            rows["t"] += [{**t, "run_uuid": rid,
                           "value": name if t["value"] == sample_name else t["value"]}
                          for t in tag_ts]
            rows["p"] += [{**param_t, "run_uuid": rid, "key": k, "value": v}
                          for k, v in run_params.items()]
            for k, v, s, ts in run_metrics:
                point = {"run_uuid": rid, "key": k, "value": v, "timestamp": ts, "step": s,
                         "is_nan": False}
                rows["m"].append({**metric_t, **point})
                rows["l"].append({**latest_t, **point})
            if len(rows["m"]) >= 20_000:
                flush()
        flush()


def search(args: argparse.Namespace) -> dict[str, Any]:
    """MLflow ``search_runs`` with the same filter over the same runs as bench_search.py."""
    import mlflow

    client = _client(Path(args.dir))
    exp = client.create_experiment("bench")
    sample = max(2, min(args.api_sample, args.runs))
    _api_populate(client, exp, 0, 1, args.metrics, args.seed)  # warm-up: first-call costs
    start = time.perf_counter()
    _api_populate(client, exp, 1, sample, args.metrics, args.seed)
    api_s = time.perf_counter() - start
    start = time.perf_counter()
    if sample < args.runs:
        store = client._tracking_client.store
        sample_run = client.search_runs([exp], max_results=1)[0].info.run_id
        _bulk_populate(store, exp, sample_run, sample, args.runs, args.metrics, args.seed)
    bulk_s = time.perf_counter() - start

    queries: dict[str, Any] = {}
    for label, order in (("filter", None), ("filter+order", [search_order()])):
        kwargs: dict[str, Any] = {"filter_string": search_filter(), "max_results": 100}
        if order:
            kwargs["order_by"] = order
        for _ in range(2):  # warm-up
            client.search_runs([exp], **kwargs)
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            found = client.search_runs([exp], **kwargs)
            times.append(time.perf_counter() - t0)
        queries[label] = {"median_ms": median(times) * 1000,
                          "p95_ms": percentile(times, 95) * 1000,
                          "returned": len(found), "names": [r.info.run_name for r in found]}
    return {"mlflow": mlflow.__version__, "runs": args.runs, "metrics": args.metrics,
            "api_runs": sample, "api_timed_runs": sample - 1, "api_s": api_s,
            "bulk_runs": args.runs - sample, "bulk_s": bulk_s, "queries": queries}


def populate_ui(args: argparse.Namespace) -> dict[str, Any]:
    """bench_ui.py's data in MLflow's SQLite store: ``--runs`` runs x ``--metrics`` metrics
    x ``--params`` params (the same as Forgeline's), and one run of ``--long-metrics``
    metrics x ``--long-steps`` steps, written as MLflow's API writes its rows."""
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric

    started = time.perf_counter()
    client = _client(Path(args.dir))
    exp = client.create_experiment("ui-bench")
    make = partial(_ui_run, n_params=args.params)
    _api_populate(client, exp, 0, 1, args.metrics, args.seed, make)
    store = client._tracking_client.store
    sample_run = client.search_runs([exp], max_results=1)[0].info.run_id
    _bulk_populate(store, exp, sample_run, 1, args.runs, args.metrics, args.seed, make)
    long_exp = client.create_experiment("ui-long")
    long_run = client.create_run(long_exp, run_name="long").info.run_id
    metrics, latest = SqlMetric.__table__, SqlLatestMetric.__table__
    with store.engine.begin() as conn:
        for m in range(args.long_metrics):
            key = f"loss{m}"
            for first in range(0, args.long_steps, 100_000):
                conn.execute(metrics.insert(), [
                    {"run_uuid": long_run, "key": key, "value": 1.0 / (1 + s) + m,
                     "timestamp": 1_700_000_000_000 + s, "step": s, "is_nan": False}
                    for s in range(first, min(first + 100_000, args.long_steps))])
            conn.execute(latest.insert(), {"run_uuid": long_run, "key": key,
                                           "value": 1.0 / args.long_steps + m,
                                           "timestamp": 1_700_000_000_000 + args.long_steps,
                                           "step": args.long_steps - 1, "is_nan": False})
        conn.execute(sa.text("ANALYZE"))
    return {"experiment_id": exp, "long_experiment_id": long_exp, "long_run_id": long_run,
            "seconds": time.perf_counter() - started}


def _ui_run(i: int, n_metrics: int, seed: int, n_params: int) -> Any:
    return ui_run(i, n_metrics, n_params, seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("log_metric")
    p.add_argument("--dir", required=True)
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--batch-points", type=int, default=10_000)
    p = sub.add_parser("search")
    p.add_argument("--dir", required=True)
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--metrics", type=int, default=20)
    p.add_argument("--api-sample", type=int, default=200)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p = sub.add_parser("populate-ui")
    p.add_argument("--dir", required=True)
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--metrics", type=int, default=20)
    p.add_argument("--params", type=int, default=20)
    p.add_argument("--long-metrics", type=int, default=10)
    p.add_argument("--long-steps", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    commands = {"log_metric": log_metric, "search": search, "populate-ui": populate_ui}
    result = commands[args.command](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
