"""Explanations add up to the model's output, per input column, for every family trained."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from forgeline.data.schema import ColumnInfo, ColumnKind, Schema
from forgeline.entities import Task
from forgeline.errors import NotExplainable
from forgeline.packaging.explain import Explainer, explain
from forgeline.packaging.feature_sources import feature_sources
from forgeline.packaging.reasons import format_contribution, format_value
from forgeline.training.plan import ModelPlan
from tests.packaging.conftest import KINDS, make_frame

FAMILIES = ["linear", "random_forest", "hist_gradient_boosting", "lightgbm",
            *(["xgboost"] if importlib.util.find_spec("xgboost") else [])]
KINDS_ALL = {**KINDS, "tier": ColumnKind.CATEGORICAL}  # 30 values: target-encoded


def _frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    X = make_frame(n, seed)
    X["tier"] = np.random.default_rng(seed + 1).choice([f"t{i}" for i in range(30)], n)
    X.loc[X.index[::7], "country"] = None
    X.loc[X.index[::11], "note"] = None
    return X


def _target(X: pd.DataFrame, task: Task) -> pd.Series:
    score = (X["amount"].fillna(100) / 100 + (X["country"] == "US")
             + X["note"].fillna("").str.contains("gift") - X["tier"].str[1:].astype(int) / 30)
    if task is Task.REGRESSION:
        return score * 10
    if task is Task.BINARY:
        return (score > score.median()).astype(int)
    return pd.Series(np.digitize(score, np.quantile(score, [0.33, 0.66])), index=X.index)


def _fit(model: str, task: Task, encoding: str = "auto") -> tuple[Pipeline, pd.DataFrame]:
    X = _frame()
    y = _target(X, task)
    columns = tuple(ColumnInfo(c, KINDS_ALL[c], str(X[c].dtype), int(X[c].nunique()),
                               float(X[c].isna().mean())) for c in X.columns)
    schema = Schema(columns, ColumnInfo("label", ColumnKind.CATEGORICAL, "int64",
                                        int(y.nunique()), 0.0))
    plan = ModelPlan(task, schema, tuple(X.columns), "accuracy", 0, False, encoding=encoding)
    params = {"n_estimators": 50} if model in ("random_forest", "lightgbm", "xgboost") else {}
    return plan.pipeline(model, params).fit(X, y), X


def _output(pipeline: Pipeline, X: pd.DataFrame, explained: list[Any] | None) -> np.ndarray:
    """The model's own output in the explanation's units, computed without it."""
    Xt = pipeline[0].transform(X)
    estimator = pipeline[-1]
    if explained is None:
        return estimator.predict(Xt)
    if type(estimator).__module__.startswith("lightgbm"):
        out = estimator.predict(Xt, raw_score=True)
    elif type(estimator).__module__.startswith("xgboost"):
        out = estimator.predict(Xt, output_margin=True)
    elif hasattr(estimator, "decision_function"):
        out = estimator.decision_function(Xt)
    else:
        out = estimator.predict_proba(Xt)
    out = np.asarray(out)
    if out.ndim == 1:
        return out
    position = {c: i for i, c in enumerate(estimator.classes_)}
    return out[np.arange(len(out)), [position[c] for c in explained]]


@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTICLASS, Task.REGRESSION])
@pytest.mark.parametrize("model", FAMILIES)
def test_contributions_add_up_to_the_output(model: str, task: Task) -> None:
    pipeline, X = _fit(model, task)
    n = 8 if model == "hist_gradient_boosting" else 40  # its categories: the slow method
    rows = _frame(n, seed=5)
    explanation = explain(pipeline, rows, background=X)
    assert explanation.columns == tuple(X.columns)
    assert explanation.contributions.shape == (n, len(X.columns))
    expected = _output(pipeline, rows, explanation.explained)
    total = explanation.base + explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(explanation.output, total, rtol=0, atol=1e-12)
    # XGBoost computes in float32 (7 significant digits): its margin and its
    # contributions' sum each carry float32 rounding, a few units of its last digit
    rtol = 2e-6 if model == "xgboost" else 0
    np.testing.assert_allclose(total, expected, rtol=rtol, atol=1e-6)
    if task is Task.MULTICLASS:  # the predicted class is the one explained
        assert explanation.explained == pipeline.predict(rows).tolist()
    elif task is Task.BINARY:
        assert explanation.explained == [1] * n
    else:
        assert explanation.explained is None
        assert explanation.units == "value"
    if task is not Task.REGRESSION:
        units = ("probability" if model == "random_forest"
                 else "log-odds" if task is Task.BINARY else "logit")
        assert explanation.units == units
    # every kind of column carries weight somewhere: text, categories, dates, numbers
    assert (np.abs(explanation.contributions).sum(axis=0) > 0).sum() >= 4


@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTICLASS])
def test_histogram_boosting_on_encoded_categories_uses_treeshap(task: Task) -> None:
    pipeline, _ = _fit("hist_gradient_boosting", task, encoding="onehot")
    rows = _frame(40, seed=5)
    explanation = explain(pipeline, rows)  # TreeSHAP needs no background
    assert explanation.method == "shap.TreeExplainer"
    expected = _output(pipeline, rows, explanation.explained)
    np.testing.assert_allclose(explanation.base + explanation.contributions.sum(axis=1),
                               expected, rtol=0, atol=1e-6)


def test_each_feature_is_traced_to_its_input_column() -> None:
    pipeline, X = _fit("linear", Task.BINARY)
    sources = feature_sources(pipeline[0])
    names = pipeline[0].get_feature_names_out()
    assert len(sources) == len(names)
    by_name = dict(zip(names, sources, strict=True))
    assert by_name["missingindicator_amount"] == "amount"
    assert by_name["country_FR"] == "country" and by_name["country___missing__"] == "country"
    assert by_name["when_dayofweek"] == "when" and by_name["tier"] == "tier"
    assert by_name["gift card"] == "note"
    assert set(sources) == set(X.columns)


def test_a_linear_model_is_centred_on_its_background() -> None:
    pipeline, X = _fit("linear", Task.REGRESSION)
    explanation = explain(pipeline, X, background=X)
    # centred on the training mean: each column's contributions average to zero there
    np.testing.assert_allclose(explanation.contributions.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(explanation.base, pipeline.predict(X).mean(), atol=1e-9)


def test_reasons_in_words() -> None:
    pipeline, X = _fit("lightgbm", Task.BINARY)
    row = X.head(1).assign(amount=2450.0, note="gift card")
    explanation = Explainer(pipeline).explain(row)
    reasons = explanation.reasons(0, top=3)
    order = np.argsort(-np.abs(explanation.contributions[0]))[:3]
    assert [r.split(" ")[0] for r in reasons] == [explanation.columns[i] for i in order]
    amount = explanation.columns.index("amount")
    if amount in order:
        assert f"amount 2,450 ({format_contribution(explanation.contributions[0, amount])})" \
            in reasons
    frame = explanation.frame()
    assert list(frame.columns) == [f"contrib_{c}" for c in X.columns] + ["base_value"]
    record = explanation.records()[0]
    assert record["class"] == 1 and record["reasons"] == explanation.reasons(0)


def test_values_and_contributions_read_well() -> None:
    assert format_value(2450.0) == "2,450" and format_value(12.345) == "12.35"
    assert format_value(0.123456) == "0.123" and format_value(np.nan) == "missing"
    assert format_value("gift card") == '"gift card"' and format_value("FR") == "FR"
    assert format_value(pd.Timestamp("2024-01-05 14:00")) == "2024-01-05 14:00"
    assert format_value(True) == "true" and format_value(np.int64(7)) == "7"
    assert format_contribution(0.314) == "+0.31" and format_contribution(-1250.2) == "-1,250"
    assert format_contribution(0.00421) == "+0.0042"


def test_other_models_get_shapley_values_over_the_input_columns() -> None:
    fitted, X = _fit("linear", Task.REGRESSION)
    from sklearn.neighbors import KNeighborsRegressor

    y = _target(X, Task.REGRESSION)
    other = Pipeline([("features", fitted[0]),
                      ("model", KNeighborsRegressor().fit(fitted[0].transform(X), y))])
    rows = _frame(5, seed=3)
    explanation = explain(other, rows, background=X)
    assert explanation.method == "shap.ExactExplainer"
    np.testing.assert_allclose(explanation.output, other.predict(rows), rtol=0, atol=1e-6)
    # the base value is the mean output over the background sample (100 of its rows)
    assert explanation.base[0] == pytest.approx(
        other.predict(X.sample(100, random_state=0)).mean(), abs=1e-9)


def test_what_cannot_be_explained_is_refused() -> None:
    X = _frame(60)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", StandardScaler())])
    with pytest.raises(NotExplainable, match=r"^Cannot explain a Pipeline: only a pipeline"):
        Explainer(pipeline.fit(X[["amount", "count"]].fillna(0)))
    fitted, X = _fit("linear", Task.REGRESSION)
    with pytest.raises(NotExplainable,
                       match=r"^Explaining a Ridge model needs background data\.") as caught:
        Explainer(fitted)
    assert caught.value.hint == "Pass background= rows like the training data."


def test_a_packaged_linear_model_is_centred_on_a_sample_of_its_profile(tmp_path: Any) -> None:
    from forgeline.data.profile import build_profile
    from forgeline.packaging import Signature, load_model, save_package
    from forgeline.packaging.background import sample_from_profile

    pipeline, X = _fit("linear", Task.BINARY)
    y = _target(X, Task.BINARY)
    schema = Schema(tuple(ColumnInfo(c, KINDS_ALL[c], str(X[c].dtype), int(X[c].nunique()),
                                     float(X[c].isna().mean())) for c in X.columns),
                    ColumnInfo("label", ColumnKind.CATEGORICAL, "int64", 2, 0.0))
    profile = build_profile(X.assign(label=y), schema)
    signature = Signature.from_frame(X, schema, "binary", list(pipeline.classes_))
    sample = sample_from_profile(profile, signature, rows=2_000)
    assert list(sample.columns) == list(X.columns) and len(sample) == 2_000
    assert sample["amount"].min() >= X["amount"].min()
    assert sample["amount"].max() <= X["amount"].max()
    assert abs(sample["amount"].isna().mean() - X["amount"].isna().mean()) < 0.03
    assert abs(sample["amount"].mean() - X["amount"].mean()) < 0.1 * X["amount"].std()
    assert set(sample["country"].dropna()) == set(X["country"].dropna())
    assert abs(sample["country"].isna().mean() - X["country"].isna().mean()) < 0.03
    assert sample["when"].between(X["when"].min(), X["when"].max()).all()
    assert (sample["note"].fillna("") == "").all()  # the profile keeps no words
    predictor = load_model(save_package(tmp_path / "m", pipeline, signature, profile=profile,
                                        metrics={}, card=""))
    rows = _frame(10, seed=9)
    explanation = Explainer(predictor).explain(rows)
    np.testing.assert_allclose(explanation.output, pipeline.decision_function(rows),
                               rtol=0, atol=1e-6)
    background = sample_from_profile(profile, signature)
    assert explanation.base[0] == pytest.approx(
        pipeline.decision_function(background).mean(), abs=1e-9)  # linear: f(mean) = mean f
