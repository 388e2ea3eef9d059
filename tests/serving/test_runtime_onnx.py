"""ONNX Runtime: real pipelines built the way training builds them, converted, checked
against the native model, and refused (with the reason) when they do not convert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from forgeline.data.inference import infer_schema
from forgeline.data.profile import build_profile
from forgeline.data.schema import ColumnKind
from forgeline.entities import Task
from forgeline.errors import InvalidInput
from forgeline.packaging import Predictor, Signature, load_model, save_package
from forgeline.packaging.transformers import DatetimeParts
from forgeline.serving import onnx as fonnx
from forgeline.serving.runtime import (
    NativeRuntime,
    Prediction,
    compare,
    sample_frame,
    select_runtime,
)
from forgeline.training.tuning import ModelPlan

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

SMALL = {"n_estimators": 12, "max_iter": 12, "max_depth": 5, "num_leaves": 7, "C": 0.05,
         "min_child_samples": 5}


def frame(n: int, seed: int) -> pd.DataFrame:
    """Every column kind the feature builder handles, with the mess production sends."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3, 1, n), 2)
    amount[::11] = np.nan
    country = rng.choice(["FR", "DE", "US", "NG", "BR"], n, p=[0.4, 0.3, 0.26, 0.03, 0.01])
    merchant = rng.choice([f"m{i:03d}" for i in range(40)], n)  # > max_onehot: target-encoded
    # more categories than HistGradientBoosting splits on: the rarest share one code
    shop = rng.choice([f"s{i:03d}" for i in range(300)], n)
    note = rng.choice(["late night", "gift card card", "groceries", "fuel stop stop", ""], n)
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90 * 86400, n),
                                                         unit="s")
    online = rng.random(n) > 0.5
    score = (np.nan_to_num(amount, nan=20) / 40 + (country == "US") + online
             + (when.hour < 6) + np.char.endswith(shop, "7") + rng.normal(0, 0.3, n))
    data = pd.DataFrame({"amount": amount, "items (n)": rng.integers(1, 300, n),
                         "country": pd.Series(country).where(rng.random(n) > 0.05),
                         "merchant": merchant, "shop": shop, "online": online, "when": when,
                         "note": note})
    data["y_binary"] = (score > np.median(score)).astype(int)
    data["y_multi"] = np.digitize(score, np.quantile(score, [0.33, 0.66]))
    data["y_reg"] = score * 100
    return data


def package(tmp: Path, task: str, model: str, train: pd.DataFrame) -> Predictor:
    target = {"binary": "y_binary", "multiclass": "y_multi", "regression": "y_reg"}[task]
    data = train.drop(columns=[c for c in train if c.startswith("y_") and c != target])
    schema = infer_schema(data, target, {"note": ColumnKind.TEXT})
    features = tuple(c.name for c in schema.columns)
    plan = ModelPlan(Task(task), schema, features, "accuracy", 0, False, max_onehot=10)
    pipeline = plan.pipeline(model, SMALL).fit(data[list(features)], data[target])
    classes = None if task == "regression" else list(pipeline.classes_)
    signature = Signature.from_frame(data[list(features)], schema, task, classes)
    directory = tmp / f"{task}-{model}"
    save_package(directory, pipeline, signature, metrics={}, card="",
                 profile=build_profile(data, schema))
    return load_model(directory)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """BLAS and OpenMP threads fight over the CI's two cores: 10x slower fits."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def train_frame() -> pd.DataFrame:
    return frame(600, 0)


CASES = [("binary", "logistic_regression"), ("binary", "lightgbm"),
         ("multiclass", "hist_gradient_boosting"), ("multiclass", "random_forest"),
         ("regression", "linear"), ("regression", "hist_gradient_boosting"),
         ("regression", "lightgbm")]


@pytest.mark.parametrize(("task", "model"), CASES)
def test_pipelines_convert_and_match_the_native_model(
        tmp_path: Path, train_frame: pd.DataFrame, task: str, model: str) -> None:
    predictor = package(tmp_path, task, model, train_frame)
    if model == "hist_gradient_boosting":  # the chains of BRANCH_EQ nodes are exercised
        assert any(tree.nodes["is_categorical"].any()
                   for trees in predictor.model["model"]._predictors for tree in trees)
    runtime = select_runtime(predictor)
    assert runtime.name == "onnxruntime", runtime.detail
    assert "matches the native model" in runtime.detail
    # fresh rows: unseen categories, missing values, the training rows' ties, text
    fresh = frame(300, 1)
    fresh.loc[::7, "country"] = "XX"
    fresh.loc[::5, "shop"] = "unseen"
    fresh.loc[::13, "when"] = pd.NaT
    rows = predictor.signature.validate(pd.concat([fresh, train_frame.head(100)]))
    assert compare(NativeRuntime(predictor).predict(rows), runtime.predict(rows),
                   task != "regression") is None
    one, none = runtime.predict(rows.head(1)), runtime.predict(rows.head(0))
    assert len(one.labels) == 1 and len(none.labels) == 0


def test_the_converted_model_is_cached_next_to_the_package(
        tmp_path: Path, train_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = package(tmp_path, "binary", "logistic_regression", train_frame)
    first = fonnx.load_onnx_runtime(predictor)
    cached = list((predictor.path / fonnx.CACHE_DIR).glob("*.onnx"))
    assert len(cached) == 1 and cached[0].read_bytes() == first.onnx_bytes

    def refuse(_: Predictor) -> bytes:
        raise AssertionError("converted again")

    monkeypatch.setattr(fonnx, "convert", refuse)
    again = load_model(predictor.path)  # the cache does not break the package's checks
    assert fonnx.load_onnx_runtime(again).onnx_bytes == first.onnx_bytes


def test_datetime_parts_match_pandas_across_centuries(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    stamps = pd.to_datetime(rng.integers(pd.Timestamp("1901-01-01").value,
                                         pd.Timestamp("2099-12-31").value, 400))
    edges = pd.to_datetime(["1969-12-31 23:59:59", "1970-01-01", "2000-02-29 23:00",
                            "2024-12-31 23:59:59.999", "2100-03-01", None], format="ISO8601")
    when = pd.Series(np.concatenate([stamps.to_numpy(), edges.to_numpy()]))
    X = pd.DataFrame({"when": when})
    parts = DatetimeParts().fit_transform(X)
    y = np.nan_to_num(parts) @ rng.normal(size=parts.shape[1])
    features = ColumnTransformer([("dt", make_pipeline(DatetimeParts(), _imputer()), ["when"])])
    model = Pipeline([("features", features), ("model", LinearRegression())]).fit(X, y)
    predictor = _save(tmp_path, model, X, {"when": ColumnKind.DATETIME}, "regression")
    runtime = fonnx.load_onnx_runtime(predictor)
    rows = predictor.signature.validate(X)
    assert compare(NativeRuntime(predictor).predict(rows), runtime.predict(rows), False) is None


def test_a_model_that_does_not_convert_falls_back_or_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.gamma(2, 2, 200), "b": rng.gamma(1, 1, 200)})
    y = X["a"] * 2 + X["b"]
    model = Pipeline([("log", FunctionTransformer(np.log1p)), ("model", LinearRegression())])
    predictor = _save(tmp_path, model.fit(X, y), X, {}, "regression")
    runtime = select_runtime(predictor)
    assert runtime.name == "native"
    assert "ONNX Runtime not used" in runtime.detail and "FunctionTransformer" in (
        runtime.detail)
    with pytest.raises(InvalidInput, match=r"cannot be served with ONNX Runtime: .*"
                                           r"FunctionTransformer"):
        select_runtime(predictor, "onnx")
    assert select_runtime(predictor, "native").name == "native"
    with pytest.raises(InvalidInput, match="Unknown runtime 'fast'"):
        select_runtime(predictor, "fast")


def test_a_runtime_that_disagrees_is_not_served(
        tmp_path: Path, train_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = package(tmp_path, "binary", "logistic_regression", train_frame)
    real = fonnx.load_onnx_runtime(predictor)

    class Off(fonnx.OnnxRuntime):  # a converter bug, injected: probabilities off by 1e-3
        def __init__(self) -> None:
            self.signature = real.signature

        def predict(self, frame: pd.DataFrame) -> Prediction:
            p = real.predict(frame)
            proba = np.clip(p.proba + np.array([[-1e-3, 1e-3]]), 0, 1)
            return Prediction(p.labels, proba)

    monkeypatch.setattr(fonnx, "load_onnx_runtime", lambda _: Off())
    runtime = select_runtime(predictor)
    assert runtime.name == "native"
    assert "class probabilities differ from the native model's by up to 0.001" in (
        runtime.detail)
    with pytest.raises(InvalidInput, match="differ from the native model's"):
        select_runtime(predictor, "onnx")


def test_compare_rules() -> None:
    labels = np.array(["a", "b", "a"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.50002, 0.49998]])
    same = Prediction(labels, proba)
    assert compare(same, Prediction(labels, proba + 5e-5), True) is None
    tie = Prediction(np.array(["a", "b", "b"]), proba)  # within the tolerance: a tie
    assert compare(same, tie, True) is None
    wrong = Prediction(np.array(["b", "b", "a"]), proba)
    assert compare(same, wrong, True) == "1 of 3 labels differ from the native model's"
    values = np.array([1000.0, -2.0, 0.0])
    assert compare(Prediction(values, None), Prediction(values * (1 + 5e-5), None),
                   False) is None
    off = Prediction(values + np.array([0.5, 0, 0]), None)
    assert "1 of 3 values differ" in compare(Prediction(values, None), off, False)


def test_the_sample_covers_the_signature(train_frame: pd.DataFrame, tmp_path: Path) -> None:
    predictor = package(tmp_path, "binary", "logistic_regression", train_frame)
    sample = sample_frame(predictor.signature, model=predictor.model,
                          profile=predictor.profile)
    assert len(sample) == 256 and list(sample.columns) == predictor.signature.names
    assert sample["amount"].isna().any() and (sample["country"] == "__unseen__").any()
    assert sample["when"].notna().any() and sample["note"].str.len().gt(0).any()
    assert (sample["items (n)"] == np.round(sample["items (n)"])).all()  # integers stay so
    assert sample.equals(sample_frame(predictor.signature, model=predictor.model,
                                      profile=predictor.profile))  # seeded


def _imputer() -> object:
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy="median", keep_empty_features=True)


def _save(tmp: Path, model: object, X: pd.DataFrame, kinds: dict[str, ColumnKind],
          task: str) -> Predictor:
    data = X.assign(y=0.0)
    schema = infer_schema(data, "y", kinds)
    directory = tmp / "pkg"
    save_package(directory, model, Signature.from_frame(X, schema, task, None), metrics={},
                 card="", profile={})
    return load_model(directory)
