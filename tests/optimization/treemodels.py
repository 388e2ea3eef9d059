"""Small LightGBM models for the tree-compression and compilation tests: a table with a
categorical column, the Forgeline pipeline on it (category codes first, as training builds
it), and bare multiclass and regression estimators. Built once per session (20 trees on
500 rows: a fraction of a second each)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data.inference import infer_schema
from forgeline.entities import Task
from forgeline.training.plan import ModelPlan

__all__ = ["FEATURES", "bare", "frame", "pipeline", "rows_with_edges"]

FEATURES = ["amount", "age", "country"]
_COUNTRIES = ["FR", "DE", "US", "IT", "ES", "NL"]


@functools.cache
def frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """``amount``, ``age``, ``country`` (a category the label depends on) and ``label``."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"amount": rng.gamma(2, 40, n),
                         "age": rng.integers(18, 80, n).astype(float),
                         "country": rng.choice(_COUNTRIES, n)})
    data.loc[rng.random(n) < 0.05, "age"] = np.nan
    data["label"] = (data.amount / 80 + data.country.isin(["US", "IT"])
                     + rng.normal(0, 0.3, n) > 1.5).astype(int)
    return data


@functools.cache
def pipeline(model: str = "lightgbm", trees: int = 20) -> Any:
    """The training pipeline (features, then ``model``) fitted on the first 500 rows."""
    data = frame()
    schema = infer_schema(data, "label")
    plan = ModelPlan(Task.BINARY, schema, tuple(FEATURES), "roc_auc", 0, False)
    params = {"n_estimators": trees} if model == "lightgbm" else (
        {"max_iter": trees} if model == "hist_gradient_boosting" else {})
    return plan.pipeline(model, params).fit(data[FEATURES][:500], data.label[:500])


def rows_with_edges() -> pd.DataFrame:
    """Every row of :func:`frame` plus missing values and a country never seen."""
    data = frame()[FEATURES].copy()
    extra = pd.DataFrame({"amount": [np.nan, 10.0, 500.0], "age": [30.0, np.nan, 99.0],
                          "country": ["PT", None, "US"]})
    return pd.concat([data, extra], ignore_index=True)


@functools.cache
def bare(kind: str) -> tuple[Any, np.ndarray]:
    """A bare LightGBM estimator (``"multiclass"`` or ``"regression"``) and its rows;
    column 3 is categorical, column 1 has missing values, column 2 many zeros."""
    import lightgbm

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 4))
    X[:, 3] = rng.integers(0, 12, 500)
    X[rng.random(500) < 0.05, 1] = np.nan
    X[rng.random(500) < 0.2, 2] = 0.0  # a zero bin: splits at LightGBM's +-1e-35
    if kind == "multiclass":
        y = ((X[:, 0] > 0).astype(int) + (X[:, 3] % 3 == 0) + (X[:, 2] < 0)).clip(0, 2)
        model = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, n_jobs=1,
                                        verbose=-1)
    else:
        y = 3 * X[:, 0] + (X[:, 3] % 4) + (X[:, 2] < 0) + rng.normal(0, 0.1, 500)
        model = lightgbm.LGBMRegressor(n_estimators=20, num_leaves=8, n_jobs=1,
                                        verbose=-1)
    model.fit(X, y, categorical_feature=[3])
    test = X.copy()
    test[:5, 3] = 40.0  # categories never seen
    test[5:8, 3] = np.nan
    return model, test
