"""A served model's explanations preprocess rows through ONNX Runtime: the same matrix as
scikit-learn's, so the same contributions; anything that differs falls back to it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from forgeline.data.inference import infer_schema
from forgeline.data.profile import build_profile
from forgeline.data.schema import ColumnKind
from forgeline.entities import Task
from forgeline.examples.fraud import generate
from forgeline.packaging import Predictor, Signature, load_model, save_package
from forgeline.packaging.explain import Explainer
from forgeline.packaging.transformers import DatetimeParts
from forgeline.serving.explaining import build_explainer
from forgeline.serving.onnx import CACHE_DIR
from forgeline.training.plan import ModelPlan

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def fraud(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, pd.DataFrame]:
    """Forgeline's LightGBM pipeline on card transactions: native categories, a
    target-encoded merchant, datetime parts; and messy rows to explain."""
    data = generate(1_600, seed=0).drop(columns=["txn_id", "customer_id"])
    train, test = data.iloc[:1_200], data.iloc[1_200:].reset_index(drop=True)
    schema = infer_schema(train, "is_fraud")
    features = [c.name for c in schema.columns if c.kind.value != "id"]
    plan = ModelPlan(Task.BINARY, schema, tuple(features), "roc_auc", 0, False)
    pipeline = plan.pipeline("lightgbm", {"n_estimators": 30, "num_leaves": 15})
    pipeline.fit(train[features], train["is_fraud"])
    signature = Signature.from_frame(train[features], schema, "binary",
                                     list(pipeline.classes_))
    folder = tmp_path_factory.mktemp("fraud") / "model"
    save_package(folder, pipeline, signature, profile=build_profile(train, schema),
                 metrics={}, card="")
    rows = test[features].copy()
    rng = np.random.default_rng(1)
    rows["ts"] = rows["ts"] + pd.to_timedelta(rng.integers(0, 10**9, len(rows)), unit="ns")
    rows.loc[::5, "merchant_id"] = "m-never-seen"  # the target encoding's mean
    rows.loc[::7, "merchant_category"] = "never seen"  # LightGBM's unknown category
    rows.loc[::9, "amount"] = np.nan
    return load_model(folder), rows


def test_single_rows_are_explained_as_scikit_learn_would(
        fraud: tuple[Predictor, pd.DataFrame], caplog: pytest.LogCaptureFixture) -> None:
    predictor, rows = fraud
    with caplog.at_level(logging.INFO, logger="forgeline.serving"):
        fast = build_explainer(predictor, "fraud/1")
    assert fast.preprocessing == "onnxruntime"
    assert "preprocessing onnxruntime: equal to scikit-learn's on 256 sampled rows" in (
        caplog.text)
    assert list((Path(predictor.path) / CACHE_DIR).glob("*-features.onnx"))
    slow = Explainer(predictor)
    assert slow.preprocessing == "scikit-learn"
    frame = predictor.prepare(rows)
    # the matrix itself: every value equal, missing ones in the same places
    assert np.array_equal(fast._transform(frame), slow._transform(frame), equal_nan=True)
    whole_fast, whole_slow = fast.explain(rows), slow.explain(rows)
    assert whole_fast.preprocessing == "onnxruntime"
    raw = predictor.model[-1].predict(slow._transform(frame), raw_score=True)
    records = json.loads(rows.to_json(orient="records", date_format="iso", date_unit="ns"))
    every = len(predictor.signature.names)
    for i in range(0, len(rows), 20):  # one row at a time, as /explain gets them
        one = fast.explain(rows.iloc[[i]])
        np.testing.assert_allclose(one.contributions[0], whole_slow.contributions[i],
                                   rtol=0, atol=1e-6)
        # a JSON record, as the server gets it: explained from its columns, never a frame,
        # and worded alike (every column's value, the timestamp included)
        record = fast.explain(records[i])
        assert not isinstance(record.rows, pd.DataFrame)
        np.testing.assert_array_equal(record.contributions, one.contributions)
        assert record.reasons(0, every) == one.reasons(0, every)
        pd.testing.assert_frame_equal(record.data, one.data)
        assert one.base[0] == pytest.approx(whole_slow.base[i], abs=1e-6)
        assert one.base[0] + one.contributions[0].sum() == pytest.approx(raw[i], abs=1e-6)
    np.testing.assert_allclose(whole_fast.contributions, whole_slow.contributions, rtol=0,
                               atol=1e-6)
    np.testing.assert_allclose(whole_fast.output, raw, rtol=0, atol=1e-6)


def test_preprocessing_that_does_not_convert_or_differs_stays_scikit_learn(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.gamma(2, 2, 200),
                      "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(
                          rng.integers(0, 10**15, 200), unit="ns")})
    y = X["a"] * 2 + X["when"].dt.hour
    cases = {  # no converter for log1p; the days elapsed recomputed only for DatetimeParts
        "log": (FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                "ONNX preprocessing not used (ONNX conversion failed"),
        "imputed": (make_pipeline(DatetimeParts(), SimpleImputer()),
                    "ONNX preprocessing not used (it differs from scikit-learn's in 1 of 7 "
                    "features on 256 sampled rows)")}
    for name, (step, why) in cases.items():
        columns = ["a"] if name == "log" else ["when"]
        features = ColumnTransformer([(name, step, columns)], remainder="drop")
        model = Pipeline([("features", features), ("model", LinearRegression())]).fit(X, y)
        data = X.assign(y=y)
        schema = infer_schema(data, "y", {"when": ColumnKind.DATETIME})
        folder = tmp_path / name
        save_package(folder, model, Signature.from_frame(X, schema, "regression", None),
                     metrics={}, card="", profile=build_profile(data, schema))
        predictor = load_model(folder)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="forgeline.serving"):
            explainer = build_explainer(predictor, name)
        assert explainer.preprocessing == "scikit-learn"
        assert f"explaining {name} with linear (preprocessing scikit-learn: {why}" in (
            caplog.text)
        explanation = explainer.explain(X.iloc[:5])
        assert explanation.preprocessing == "scikit-learn"
        np.testing.assert_allclose(explanation.output, model.predict(X.iloc[:5]), atol=1e-6)
