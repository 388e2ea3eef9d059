"""Partitions of production rows with every kind of problem, and the comparison of a
partitioned run with a single-frame one (shared by the partition tests)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tests.monitoring.conftest import FEATURES, make_frame

PARTS = 4


def partitions(rows: int = 1_500, predictor: Any = None) -> list[pd.DataFrame]:
    """``PARTS`` frames of model inputs, shifted, with missing values, categories never
    seen in training (c0, in different amounts per partition) and numbers far outside
    the training range (n2); the last partition has a column the signature lacks. With a
    ``predictor``, its predictions too (``prediction``, ``proba_0``, ``proba_1``)."""
    out = []
    for i in range(PARTS):
        frame = make_frame(rows, 200 + i, shifted=i % 2 == 1)[FEATURES].copy()
        rng = np.random.default_rng(300 + i)
        frame.loc[rng.random(rows) < 0.05 * (i + 1), "n3"] = np.nan
        frame.loc[rng.random(rows) < 0.02, "c2"] = None
        frame.loc[rng.random(rows) < 0.01 * (i + 1), "c0"] = f"new{i % 2}"
        frame.loc[: 3 * i, "c0"] = "rare"
        frame.loc[rng.random(rows) < 0.03, "n2"] = 1e6 * (i + 1)
        if i == PARTS - 1:
            frame["extra"] = 1.0
        if predictor is not None:
            proba = predictor.model.predict_proba(frame[FEATURES])
            frame["prediction"] = (proba[:, 1] >= 0.5).astype("int64")
            frame["proba_0"], frame["proba_1"] = proba[:, 0], proba[:, 1]
        out.append(frame)
    return out


def close(a: Any, b: Any, path: str = "") -> None:
    """``a == b``, with floats equal to a relative 1e-12 (sums over partitions are added
    in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, a, b)
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert isinstance(b, float | int), (path, a, b)
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (path, a, b)
    else:
        assert a == b, (path, a, b)


def assert_same(partitioned: dict[str, Any], whole: dict[str, Any]) -> None:
    """Every statistic of the partitioned run equals the single-frame run's: each
    feature's drift (every statistic, the bins), the dataset drift, the prediction drift,
    the skipped columns and every quality count and finding; only the duplicates (not
    computed by partitions) differ."""
    assert partitioned["rows"] == whole["rows"]
    close(partitioned["features"], whole["features"], "features")
    close(partitioned["dataset"], whole["dataset"], "dataset")
    close(partitioned["prediction"], whole["prediction"], "prediction")
    assert (partitioned["prediction"] is None) == (whole["prediction"] is None)
    assert partitioned["skipped"] == whole["skipped"]
    pq, wq = partitioned["quality"], whole["quality"]
    close(pq["columns"], wq["columns"], "quality.columns")
    assert pq["missing_columns"] == wq["missing_columns"]
    assert pq["new_columns"] == wq["new_columns"] == ["extra"]
    assert pq["duplicate_share"] is None and wq["duplicate_share"] == 0.0
    assert pq["issues"] == [i for i in wq["issues"] if i["check"] != "duplicates"]
    assert pq["reference_duplicate_share"] == wq["reference_duplicate_share"]
