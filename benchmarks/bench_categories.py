"""Boosted trees splitting on categories themselves vs on encoded categories (issue 11).

HistGradientBoosting and LightGBM can split on a category column directly; before, both
got Forgeline's encodings (one-hot up to 20 values, cross-fitted target encoding above).
For each real table of ``bench_train_real.py`` (the same CSV export, targets and drops),
each boosted family at its defaults is cross-validated twice on the same folds (5 folds;
expanding time windows on the tables with a time column, as training does): once with the
categories encoded, once native (integer codes up to 254 values, target encoding above;
numbers and dates' parts as they are). One thread, the fits one after the other.

    .venv/bin/python benchmarks/bench_categories.py [--tables ames diamonds ...]

Prints per table and family the mean cv score of each arm, the per-fold difference
(native - encoded; for rmse negative is better) and the seconds of the five fits.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_train_real as real
from _common import BENCH_DIR, print_machine, scratch_dir, write_json
from forgeline.data.inference import infer_schema, infer_task
from forgeline.data.split import SplitStrategy
from forgeline.entities import Task
from forgeline.metrics import get_metric
from forgeline.training import zoo
from forgeline.training.tuning import ModelPlan, cv_folds, score_model

METRIC = {Task.BINARY: "roc_auc", Task.MULTICLASS: "f1_macro", Task.REGRESSION: "rmse"}
FAMILIES = ("hist_gradient_boosting", "lightgbm")
DEFAULT_TABLES = ("ames", "hpc_jobs", "credit", "churn", "loan_grade", "hotel_rates",
                  "crash_deaths", "diamonds")


def load(table: real.Table, folder: Path) -> pd.DataFrame:
    csv = folder / f"{table.name}.csv"
    real.export(table, csv)
    data = pd.read_csv(csv, low_memory=False).drop(columns=[c for c, _ in table.drop])
    data = data[data[table.target].notna()].reset_index(drop=True)
    if table.time_column:
        data[table.time_column] = pd.to_datetime(data[table.time_column], errors="coerce",
                                                 format="mixed")
    return data


def cross_validate(plan: ModelPlan, family: str, native: bool, data: pd.DataFrame,
                   y: pd.Series, folds: list[Any]) -> tuple[np.ndarray, float]:
    kind = zoo.ZOO[family]
    zoo.ZOO[family] = kind if native else dataclasses.replace(kind, categories=None)
    try:
        X = data[list(plan.features)]
        scores, start = [], time.perf_counter()
        for train, valid in folds:
            fitted = plan.pipeline(family, {}).fit(X.iloc[train], y.iloc[train])
            scores.append(score_model(fitted, X.iloc[valid], y.iloc[valid], plan.scorer))
        return np.array(scores), time.perf_counter() - start
    finally:
        zoo.ZOO[family] = kind


def run_table(table: real.Table, folder: Path) -> list[dict[str, Any]]:
    data = load(table, folder)
    schema = infer_schema(data, table.target)
    task = infer_task(data[table.target])
    y = data[table.target] if task is Task.REGRESSION else data[table.target].astype(str)
    times = data[table.time_column] if table.time_column else None
    folds = cv_folds(task, y, 5, 0, strategy=SplitStrategy.TIME if times is not None else None,
                     times=times)
    plan = ModelPlan(task, schema, tuple(c.name for c in schema.columns), METRIC[task], 0,
                     False)
    sign = 1 if get_metric(METRIC[task], task).greater_is_better else -1
    rows = []
    for family in FAMILIES:
        encoded, encoded_s = cross_validate(plan, family, False, data, y, folds)
        native, native_s = cross_validate(plan, family, True, data, y, folds)
        better = sign * (native - encoded)
        rows.append({"table": table.name, "family": family, "metric": METRIC[task],
                     "encoded": float(encoded.mean()), "native": float(native.mean()),
                     "native_minus_encoded_per_fold": (native - encoded).tolist(),
                     "folds_native_better": int((better > 0).sum()),
                     "encoded_s": encoded_s, "native_s": native_s})
        print(f"{table.name:13s} {family:22s} {METRIC[task]:8s} encoded {encoded.mean():.4f}"
              f" native {native.mean():.4f}  native better on {(better > 0).sum()}/5 folds"
              f"  fits {encoded_s:.0f} s -> {native_s:.0f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(DEFAULT_TABLES),
                        choices=sorted(real.BY_NAME))
    parser.add_argument("--json", default=str(BENCH_DIR / "out" / "bench_categories.json"))
    args = parser.parse_args(argv)
    print_machine()
    from threadpoolctl import threadpool_limits

    rows: list[dict[str, Any]] = []
    with scratch_dir("categories") as folder, threadpool_limits(1):
        for name in args.tables:
            rows.extend(run_table(real.BY_NAME[name], folder))
    write_json(args.json, "categories", {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
