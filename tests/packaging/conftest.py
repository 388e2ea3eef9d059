"""Small training data and fitted pipelines, built once per session (training is the slow
part; every test gets its own copy of nothing it could change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from forgeline.data.schema import ColumnInfo, ColumnKind, Schema
from forgeline.packaging import Signature

KINDS = {"amount": ColumnKind.NUMERIC, "count": ColumnKind.NUMERIC,
         "country": ColumnKind.CATEGORICAL, "online": ColumnKind.BOOLEAN,
         "when": ColumnKind.DATETIME, "note": ColumnKind.TEXT}


def make_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n)
    amount[::9] = np.nan
    return pd.DataFrame({
        "amount": amount,
        "count": rng.integers(0, 20, n),
        "country": rng.choice(["FR", "DE", "US"], n),
        "online": rng.random(n) > 0.5,
        "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        "note": rng.choice(["late night", "gift card", "groceries", "fuel stop"], n),
    })


def make_schema(X: pd.DataFrame, target: str = "label") -> Schema:
    columns = tuple(ColumnInfo(c, KINDS[c], str(X[c].dtype), int(X[c].nunique()),
                               float(X[c].isna().mean())) for c in X.columns)
    return Schema(columns, ColumnInfo(target, ColumnKind.CATEGORICAL, "object", 2, 0.0))


def preprocessor() -> ColumnTransformer:
    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
         ["amount", "count"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["country", "online"]),
        ("text", TfidfVectorizer(), "note"),
    ])


@dataclass
class Trained:
    model: Any
    X: pd.DataFrame
    signature: Signature
    task: str


def _targets(X: pd.DataFrame) -> dict[str, np.ndarray]:
    score = X["amount"].fillna(100).to_numpy() / 100 + (X["country"] == "US") + X["online"]
    return {"binary": np.where(score > np.median(score), "fraud", "ok"),
            "multiclass": np.digitize(score, np.quantile(score, [0.33, 0.66])),
            "regression": score * 10.0}


def _fit(estimator: Any, task: str) -> Trained:
    X = make_frame()
    y = _targets(X)[task]
    model = Pipeline([("prep", preprocessor()), ("model", estimator)]).fit(X, y)
    classes = None if task == "regression" else model.classes_
    return Trained(model, X, Signature.from_frame(X, make_schema(X), task, classes), task)


def _estimators() -> dict[str, tuple[Any, str]]:
    import lightgbm as lgb
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    small = {"n_estimators": 15, "num_leaves": 7, "min_child_samples": 5, "n_jobs": 1,
             "verbose": -1}
    found = {
        "hgb-binary": (HistGradientBoostingClassifier(max_iter=15), "binary"),
        "logreg-multiclass": (LogisticRegression(max_iter=500), "multiclass"),
        "forest-regression": (RandomForestRegressor(n_estimators=8, max_depth=4, n_jobs=1,
                                                    random_state=0), "regression"),
        "lgbm-binary": (lgb.LGBMClassifier(**small), "binary"),
        "lgbm-regression": (lgb.LGBMRegressor(**small), "regression"),
    }
    try:
        import xgboost as xgb
    except ImportError:
        return found
    found["xgb-multiclass"] = (xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1),
                               "multiclass")
    return found


MODEL_KINDS = ["hgb-binary", "logreg-multiclass", "forest-regression", "lgbm-binary",
               "lgbm-regression", "xgb-multiclass"]


@pytest.fixture(scope="session")
def trained_models() -> dict[str, Trained]:
    cache: dict[str, Trained] = {}
    estimators = _estimators()

    class Lazy(dict):  # fit each kind the first time a test asks for it
        def __missing__(self, key: str) -> Trained:
            if key not in estimators:
                pytest.skip(f"{key}: its library is not installed")
            estimator, task = estimators[key]
            self[key] = _fit(estimator, task)
            return self[key]

    return Lazy(cache)


@pytest.fixture()
def binary(trained_models: dict[str, Trained]) -> Trained:
    return trained_models["hgb-binary"]


@pytest.fixture()
def regression(trained_models: dict[str, Trained]) -> Trained:
    return trained_models["forest-regression"]
