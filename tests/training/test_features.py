"""The feature pipelines training builds: boosted trees split on categories themselves,
the other models get them encoded."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from forgeline.data.inference import infer_schema
from forgeline.entities import Task
from forgeline.training.features import build_preprocessor, native_categories
from forgeline.training.tuning import ModelPlan


def table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    agent = rng.choice([f"agent {i}" for i in range(400)], n)  # > 255 values
    effect = {f"agent {i}": rng.normal(0, 20) for i in range(400)}
    amount = rng.gamma(2, 30, n)
    amount[::9] = np.nan
    data = pd.DataFrame({
        "agent": agent,
        "amount": amount,
        "room": pd.Series(rng.choice(["A", "B", "C"], n)).where(rng.random(n) > 0.1),
        "arrival": pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
    })
    data["price"] = (np.nan_to_num(amount, nan=50) + data["agent"].map(effect)
                     + rng.normal(0, 3, n))
    return data


def plan(data: pd.DataFrame, encoding: str = "auto") -> ModelPlan:
    schema = infer_schema(data, "price")
    features = tuple(c.name for c in schema.columns)
    return ModelPlan(Task.REGRESSION, schema, features, "rmse", 0, False, encoding=encoding)


def steps(pipeline: Pipeline) -> set[str]:
    return {name for name, _, _ in pipeline["features"].transformers}


def test_native_codes_come_first_with_unseen_as_missing() -> None:
    data = table().assign(desk=lambda d: d["agent"].str[-2:])  # 110 values
    schema = infer_schema(data, "price")
    features = ["amount", "agent", "arrival", "desk", "room"]
    # 400 agents are more than the trees split on: target-encoded, after everything else
    assert native_categories(schema, features) == ["desk", "room"]
    pre = build_preprocessor(schema, features, native=True, dense=True, seed=0,
                             target_type="continuous")
    X = pre.fit_transform(data[features], data["price"])
    names = list(pre.get_feature_names_out())
    assert names[:3] == ["desk", "room", "amount"] and names[-1] == "agent"
    assert set(X[:, 0]) == set(range(data["desk"].nunique()))
    assert set(X[:, 1]) == {0.0, 1.0, 2.0, 3.0}  # A, B, C and the missing as a category
    assert np.isnan(X[:, 2]).sum() == data["amount"].isna().sum()  # numbers: as they are
    fresh = data.head(3).assign(desk="never seen", room="Z")
    assert np.isnan(pre.transform(fresh[features])[:, :2]).all()


def test_boosted_trees_are_told_the_category_columns() -> None:
    data = table().assign(desk=lambda d: d["agent"].str[-2:])
    p = plan(data)
    X, y = data[list(p.features)], data["price"]
    hgb = p.pipeline("hist_gradient_boosting", {}).fit(X, y)
    assert hgb["model"].is_categorical_.tolist()[:2] == [True, True]
    assert not hgb["model"].is_categorical_[2:].any()
    lgbm = p.pipeline("lightgbm", {}).fit(X, y)
    assert "cat_threshold" in lgbm["model"].booster_.model_to_string()
    # a linear model gets them encoded; "onehot" or "target" ask the same of every model
    assert {"onehot", "target"} <= steps(p.pipeline("linear", {}))
    forced = plan(data, "target").pipeline("hist_gradient_boosting", {})
    assert "categories" not in steps(forced)
    assert forced["model"].categorical_features == "from_dtype"  # (a numpy matrix: none)
