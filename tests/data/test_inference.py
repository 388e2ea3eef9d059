"""infer_schema, infer_kind and infer_task on generated frames."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from forgeline.data.inference import infer_kind, infer_schema, infer_task
from forgeline.data.schema import ColumnKind
from forgeline.entities import Task
from forgeline.errors import InvalidInput

K = ColumnKind
RNG = np.random.default_rng(7)


def test_schema_of_a_realistic_frame(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned")
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {"customer_id": K.ID, "signup": K.DATETIME, "age": K.NUMERIC,
                     "income": K.NUMERIC, "region": K.CATEGORICAL, "plan": K.CATEGORICAL,
                     "autopay": K.BOOLEAN, "support_calls": K.NUMERIC,
                     "usage_score": K.NUMERIC}
    assert "churned" not in schema.names()
    assert schema.target.name == "churned" and schema.target.kind is K.BOOLEAN
    assert schema.target.n_unique == 2 and schema.target.dtype == "int64"
    income = schema["income"]
    assert income.dtype == "float64" and 0.03 < income.missing_share < 0.07
    assert schema["plan"].n_unique == 3


def test_overrides_win_and_drop_removes(churn: pd.DataFrame) -> None:
    schema = infer_schema(churn, "churned", overrides={"support_calls": K.CATEGORICAL,
                                                       "customer_id": K.CATEGORICAL},
                          drop=["signup", "age"])
    assert schema["support_calls"].kind is K.CATEGORICAL
    assert schema["customer_id"].kind is K.CATEGORICAL
    assert "signup" not in schema.names() and "age" not in schema.names()
    assert schema.names(K.NUMERIC) == ["income", "usage_score"]


def test_unknown_target_lists_columns(churn: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match=r"Target column 'Churned' is not in the data; its "
                                           r"columns are 'customer_id', 'signup', .* and 2 "
                                           r"more\.") as e:
        infer_schema(churn, "Churned")
    assert "case-sensitive" in (e.value.hint or "")


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"drop": ["nope"]}, r"Unknown column\(s\) in drop: 'nope'"),
    ({"overrides": {"plans": K.CATEGORICAL}}, r"Unknown column\(s\) in feature override: "
                                              r"'plans'"),
    ({"drop": ["churned"]}, "The target column 'churned' is listed in data.drop"),
    ({"overrides": {"plan": "categorical-ish"}}, "Override for column 'plan' is "
                                                 "'categorical-ish', not a column kind"),
])
def test_bad_names(churn: pd.DataFrame, kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        infer_schema(churn, "churned", **kwargs)


def _shuffled(n: int) -> np.ndarray:
    return RNG.permutation(np.arange(1000, 1000 + n))


@pytest.mark.parametrize(("values", "name", "kind"), [
    (RNG.integers(0, 2, 200), "flag", K.BOOLEAN),  # numeric 0/1 is a yes/no
    (RNG.choice([0.0, 1.0, np.nan], 200), "flag", K.BOOLEAN),
    (RNG.choice(["Yes", "No"], 200), "member", K.BOOLEAN),
    (RNG.choice([" true", "FALSE"], 200), "member", K.BOOLEAN),
    (RNG.choice([1, 2], 200), "doors", K.NUMERIC),  # two values that are not a yes/no
    (RNG.choice(["yes", "maybe"], 200), "answer", K.CATEGORICAL),
    (np.arange(200), "Unnamed: 0", K.ID),  # the index a CSV export left behind
    (np.arange(200), "x", K.ID),  # sorted and distinct: a row number
    (_shuffled(200), "user_id", K.ID),
    (_shuffled(200), "UserId", K.ID),
    (_shuffled(200), "amount_cents", K.NUMERIC),  # distinct, but neither sorted nor named
    (np.arange(10), "id", K.NUMERIC),  # too few rows to call it anything
    (RNG.normal(size=200), "ratio_id", K.NUMERIC),  # fractions are never ids
    ([str(uuid.UUID(int=int(i))) for i in RNG.integers(0, 2**62, 200)], "ref", K.ID),
    ([f"{a} {b}" for a, b in zip(RNG.choice(["Ann", "Bo", "Cy", "Di", "Ed"], 200),
                                 RNG.integers(0, 10**6, 200), strict=True)], "name", K.ID),
    (RNG.choice(["red", "green", "blue"], 200), "colour", K.CATEGORICAL),
    ([f"{d}" for d in pd.date_range("2020-01-01", periods=200, freq="D").date], "day",
     K.DATETIME),
    (["12", "3", "March", "7"] * 50, "code", K.CATEGORICAL),  # not dates: no year
    (["1.2.3", "2.0.1"] * 100, "version", K.CATEGORICAL),
    ([f"{x:.2f}" for x in RNG.normal(50, 10, 190)] + ["?"] * 10, "price", K.NUMERIC),
    (["12", "x!", "3.5", "??"] * 50, "b", K.NUMERIC),  # half numbers, half symbol junk
    (["S", "M", "L", "10", "12", "14"] * 40, "size", K.CATEGORICAL),  # sizes, not junk
    ([f"0{x}" for x in RNG.choice(RNG.integers(1000, 9999, 40), 200)], "zip",
     K.CATEGORICAL),  # codes with leading zeros are not numbers
    (pd.date_range("2024-01-01", periods=200, freq="h", tz="UTC"), "ts", K.DATETIME),
    ([np.nan] * 200, "empty", K.NUMERIC),
    ([None] * 200, "empty", K.CATEGORICAL),
    (pd.Categorical(RNG.choice(["s", "m", "l"], 200)), "size", K.CATEGORICAL),
])
def test_infer_kind(values: object, name: str, kind: ColumnKind) -> None:
    assert infer_kind(pd.Series(values, name=name)) is kind


def test_free_text() -> None:
    words = np.array(["the", "service", "was", "slow", "but", "staff", "were", "friendly",
                      "and", "helpful", "today", "price", "delivery", "late", "refund"])
    notes = [" ".join(RNG.choice(words, RNG.integers(6, 14))) for _ in range(300)]
    assert infer_kind(pd.Series(notes, name="review")) is K.TEXT


def test_target_is_never_an_id() -> None:
    frame = pd.DataFrame({"x": RNG.normal(size=100), "rank": np.arange(100)})
    assert infer_schema(frame, "rank").target.kind is K.NUMERIC


@pytest.mark.parametrize(("values", "task"), [
    (RNG.normal(size=500), Task.REGRESSION),
    (RNG.integers(0, 2, 500), Task.BINARY),
    (RNG.choice([True, False], 500), Task.BINARY),
    (RNG.choice(["spam", "ham", None], 500), Task.BINARY),
    (RNG.integers(0, 5, 500).astype(float), Task.MULTICLASS),  # whole floats: classes
    (RNG.integers(1, 4, 500), Task.MULTICLASS),
    (RNG.choice(["a", "b", "c", "d"], 500), Task.MULTICLASS),
    (RNG.integers(0, 400, 500), Task.REGRESSION),  # too many whole numbers for classes
    (RNG.integers(0, 5, 500) + 0.5, Task.REGRESSION),  # fractions: a quantity
    ([f"{x:.1f}" for x in RNG.normal(size=500)], Task.REGRESSION),  # numbers as text
])
def test_infer_task(values: object, task: Task) -> None:
    assert infer_task(pd.Series(values, name="y")) is task


@pytest.mark.parametrize(("values", "fragment"), [
    (["a"] * 20 + [None] * 5, "Target 'y' has a single value 'a': nothing to learn"),
    ([np.nan] * 10, "Target 'y' has no values: every row is missing"),
    (pd.date_range("2024-01-01", periods=10), "Target 'y' holds dates or durations"),
    ([f"user{i}" for i in range(500)], "Target 'y' has a different value on nearly every "
                                       r"row \(500 distinct in 500\)"),
    ([f"{x:.1f}" for x in RNG.normal(size=95)] + ["n/a?"] * 5,
     "Target 'y' is mostly numbers but 5 values are not, e.g. 'n/a\\?'"),
])
def test_infer_task_errors(values: object, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        infer_task(pd.Series(values, name="y"))
