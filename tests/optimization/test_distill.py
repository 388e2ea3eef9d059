"""Distillation on a real mixed table: MUNGE neighbours on the raw columns, soft targets,
students that take the teacher's columns and follow its predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from forgeline.data.inference import infer_schema
from forgeline.entities import Task
from forgeline.optimization.distill import distill_candidates, distillable, munge
from forgeline.training.plan import ModelPlan

FEATURES = ["amount", "items", "country", "online", "when", "note"]


def _table(n: int, seed: int) -> pd.DataFrame:
    """Numbers (floats with missing values, integers), a category with missing values, a
    boolean, dates and a label that depends on most of them."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n)
    items = rng.integers(1, 12, n)
    country = rng.choice(["FR", "DE", "US", "GB"], n).astype(object)
    online = rng.random(n) < 0.4
    when = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 90 * 24, n), unit="h")
    logit = amount / 60 - 2 + (country == "US") * 1.5 + online * 1.0 - items / 10
    frame = pd.DataFrame({"amount": amount, "items": items, "country": country,
                          "online": online, "when": when,
                          "note": rng.choice(["gift", "self", "work"], n).astype(object),
                          "y": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)})
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan
    frame.loc[rng.random(n) < 0.08, "country"] = None
    return frame


@pytest.fixture(scope="module")
def teacher() -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """A 50-tree LightGBM on Forgeline's own preprocessing (native categories, raw dates),
    fitted on 1,200 rows; 600 more to test on."""
    frame = _table(1800, 0)
    schema = infer_schema(frame, "y")
    plan = ModelPlan(Task.BINARY, schema, tuple(FEATURES), "roc_auc", 0, False)
    train, test = frame.iloc[:1200], frame.iloc[1200:]
    model = plan.pipeline("lightgbm", {"n_estimators": 50}).fit(train[FEATURES], train.y)
    return model, train, test


def test_munge_keeps_every_column_kind_and_takes_only_neighbour_values(teacher) -> None:
    model, train, _ = teacher
    X = train[FEATURES].reset_index(drop=True)
    fake = munge(X, model.steps[0][1], p=0.5, s=5.0, copies=2, seed=1)
    assert len(fake) == 2 * len(X) and list(fake.columns) == FEATURES
    assert (fake.dtypes == X.dtypes).all(), (fake.dtypes, X.dtypes)
    twice = pd.concat([X, X], ignore_index=True)
    # categories, booleans and dates are copied from a neighbour, never made up
    assert set(fake.country.dropna()) <= set(X.country.dropna())
    assert set(fake.when) <= set(X.when) and set(fake.note) <= set(X.note)
    assert fake.country.isna().any() and fake.amount.isna().any()  # missing values travel
    # about p of the numbers changed (drawn around the neighbour's value); categories
    # change less: the nearest neighbour mostly shares them
    both = fake.amount.notna() & twice.amount.notna()
    changed = (fake.amount[both] != twice.amount[both]).mean()
    assert 0.35 < changed < 0.6, changed
    assert 0 < (fake.note != twice.note).mean() < changed
    # numbers: drawn around the neighbour's value, inside the training range, integers stay
    # whole; not copies of existing values
    amounts = fake.amount.dropna()
    assert amounts.between(X.amount.min(), X.amount.max()).all()
    assert (fake["items"] == fake["items"].round()).all()
    assert fake["items"].between(1, 11).all()
    assert len(set(amounts) - set(X.amount.dropna())) > 0.2 * len(amounts)
    # p = 0 changes nothing; the same seed gives the same rows
    assert munge(X, model.steps[0][1], p=0.0, seed=1).equals(X)
    assert munge(X, model.steps[0][1], seed=3).equals(munge(X, model.steps[0][1], seed=3))


def test_students_take_the_teachers_columns_and_follow_it(teacher) -> None:
    model, train, test = teacher
    candidates = distill_candidates(model, train[FEATURES], "binary", seed=0)
    assert [c.name for c in candidates] == ["distilled-lightgbm-40x7",
                                            "distilled-lightgbm-100x15", "distilled-linear"]
    want = model.predict_proba(test[FEATURES])[:, 1]
    teacher_auc = roc_auc_score(test.y, want)
    for candidate in candidates:
        assert candidate.technique == "distillation"
        assert candidate.model.steps[0][1] is model.steps[0][1]  # the teacher's preprocessing
        assert candidate.params["synthetic"] == len(train)
        assert list(candidate.model.classes_) == [0, 1]
        got = candidate.model.predict_proba(test[FEATURES])[:, 1]
        # it learned the teacher's function: probabilities close to its, not just labels
        # it learned the teacher's function: probabilities close to its, not only labels
        # (a linear student follows trees less closely)
        linear = candidate.params["student"] == "linear"
        assert np.corrcoef(got, want)[0, 1] > (0.8 if linear else 0.93), candidate.name
        assert np.abs(got - want).mean() < (0.13 if linear else 0.07), candidate.name
        assert roc_auc_score(test.y, got) > teacher_auc - 0.02, candidate.name
    trees = candidates[0].model.steps[1][1]
    assert trees.booster_.num_trees() == 40
    assert trees.get_params()["categorical_column"] == model.steps[1][1].get_params()[
        "categorical_column"]


def test_multiclass_and_regression_students() -> None:
    frame = _table(900, 2)
    frame["y3"] = pd.cut(frame["items"] + (frame.country == "US") * 4, 3, labels=False)
    frame["value"] = frame["items"] * 300.0 + frame.online * 500  # a large scale
    for target, task, metric in (("y3", Task.MULTICLASS, "log_loss"),
                                 ("value", Task.REGRESSION, "rmse")):
        schema = infer_schema(frame[[*FEATURES, target]], target)
        plan = ModelPlan(task, schema, tuple(FEATURES), metric, 0, False)
        model = plan.pipeline("lightgbm", {"n_estimators": 50}).fit(frame[FEATURES],
                                                                   frame[target])
        student = distill_candidates(model, frame[FEATURES], task, sizes=((40, 7, 0.2),),
                                     linear=False)[0].model
        if task is Task.MULTICLASS:
            got, want = (student.predict_proba(frame[FEATURES]),
                         model.predict_proba(frame[FEATURES]))
            assert got.shape == want.shape == (900, 3)
            assert (got.argmax(1) == want.argmax(1)).mean() > 0.9
        else:
            got, want = student.predict(frame[FEATURES]), model.predict(frame[FEATURES])
            assert np.corrcoef(got, want)[0, 1] > 0.95
            # on the teacher's scale, not only correlated (leaves in the target's units)
            assert np.abs(got - want).mean() < 0.1 * want.std()


def test_a_linear_teacher_is_not_distilled(teacher) -> None:
    _, train, _ = teacher
    schema = infer_schema(train, "y")
    plan = ModelPlan(Task.BINARY, schema, tuple(FEATURES), "roc_auc", 0, False)
    linear = plan.pipeline("logistic_regression", {}).fit(train[FEATURES], train.y)
    assert distillable(linear, "binary") == ("the teacher is already a linear model "
                                             "(LogisticRegression): no smaller student")
    assert distill_candidates(linear, train[FEATURES], "binary") == []
    assert "not a pipeline" in distillable(linear.steps[1][1], "binary")
