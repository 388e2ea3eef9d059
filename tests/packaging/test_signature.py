"""Signature: what it records from training, and how validate coerces or refuses input."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeline.errors import InvalidInput
from forgeline.packaging import InputColumn, Signature
from tests.packaging.conftest import make_frame, make_schema


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(60)


@pytest.fixture(scope="module")
def sig(frame: pd.DataFrame) -> Signature:
    return Signature.from_frame(frame, make_schema(frame), "binary", np.array(["fraud", "ok"]))


def strict(sig: Signature) -> Signature:
    return dataclasses.replace(sig, unseen_categories="error")


def test_from_frame_records_kinds_dtypes_categories_and_ranges(
        sig: Signature, frame: pd.DataFrame) -> None:
    by_name = {c.name: c for c in sig.inputs}
    assert sig.names == list(frame.columns)
    assert (sig.task, sig.target, sig.classes) == ("binary", "label", ("fraud", "ok"))
    amount = by_name["amount"]
    assert (amount.kind, amount.dtype, amount.nullable) == ("numeric", "float64", True)
    assert amount.minimum == frame["amount"].min() and amount.maximum == frame["amount"].max()
    assert by_name["count"].nullable is False and by_name["count"].dtype == "int64"
    assert by_name["country"].categories == ("DE", "FR", "US")
    assert by_name["online"].categories == ("False", "True")
    assert by_name["when"].kind == "datetime" and by_name["when"].categories is None
    assert by_name["note"].kind == "text" and by_name["note"].categories is None


def test_to_dict_round_trips_through_json(sig: Signature) -> None:
    again = Signature.from_dict(json.loads(json.dumps(sig.to_dict())))
    assert again == sig
    ints = dataclasses.replace(sig, classes=(0, 1, 2), task="multiclass")
    assert Signature.from_dict(json.loads(json.dumps(ints.to_dict()))).classes == (0, 1, 2)


@pytest.mark.parametrize("broken", [{}, {"inputs": [{"name": "a"}], "task": "binary",
                                         "target": "y"},
                                    {"inputs": [], "task": "clustering", "target": "y"}])
def test_from_dict_refuses_malformed_signatures(broken: dict) -> None:
    with pytest.raises(InvalidInput, match=r"signature is malformed|Invalid task"):
        Signature.from_dict(broken)


def test_a_conforming_frame_comes_back_as_is(sig: Signature, frame: pd.DataFrame) -> None:
    assert sig.validate(frame) is frame


def test_extra_columns_are_dropped_and_order_fixed(sig: Signature, frame: pd.DataFrame) -> None:
    shuffled = frame[list(reversed(frame.columns))].assign(extra=1, other="x")
    out = sig.validate(shuffled)
    assert list(out.columns) == sig.names
    pd.testing.assert_frame_equal(out, frame)


def test_numbers_as_strings_and_ints_are_coerced(sig: Signature, frame: pd.DataFrame) -> None:
    given = frame.head(3).assign(amount=["12.5", "7", None], count=[1.0, 2.0, 3.0],
                                 when=["2024-05-01T12:30:00", "2024-05-02", None],
                                 online=["true", "0", "no"])
    out = sig.validate(given)
    assert out["amount"].dtype == np.float64 and out["amount"].iloc[0] == 12.5
    assert np.isnan(out["amount"].iloc[2])
    assert out["count"].dtype == np.int64
    assert out["when"].dtype == frame["when"].dtype
    assert out["when"].iloc[0] == pd.Timestamp("2024-05-01T12:30:00")
    assert out["online"].tolist() == [True, False, False]
    ints = sig.validate(frame.assign(amount=np.arange(len(frame))))
    assert ints["amount"].dtype == np.float64


def test_iso_strings_with_offsets_are_read_as_utc(sig: Signature, frame: pd.DataFrame) -> None:
    out = sig.validate(frame.head(1).assign(when=["2024-05-01T12:30:00+02:00"]))
    assert out["when"].iloc[0] == pd.Timestamp("2024-05-01T10:30:00")


def test_nulls_are_allowed_everywhere(sig: Signature, frame: pd.DataFrame) -> None:
    nulls = pd.DataFrame({name: [None, None] for name in sig.names})
    out = sig.validate(nulls)
    assert out.isna().all().all() and list(out.columns) == sig.names
    assert out["count"].dtype == np.float64  # an int column with nulls becomes float


def test_an_empty_frame_keeps_its_columns(sig: Signature, frame: pd.DataFrame) -> None:
    empty = pd.DataFrame({name: pd.Series([], dtype=object) for name in sig.names})
    out = sig.validate(empty)
    assert len(out) == 0 and list(out.columns) == sig.names
    assert out["when"].dtype == frame["when"].dtype


def test_every_problem_is_named_in_one_error(sig: Signature, frame: pd.DataFrame) -> None:
    bad = frame.head(4).drop(columns=["country", "note"]).assign(
        amount=[1.0, 2.0, "abc", 4.0], when=["2024-01-01", "soon", None, None])
    with pytest.raises(InvalidInput) as info:
        sig.validate(bad)
    message = str(info.value)
    assert message.startswith("Input does not match the model signature: missing columns "
                              "'country', 'note'; ")
    assert "column 'amount' (numeric, float64): cannot convert 'abc' (row 2) to a number" in (
        message)
    assert re.search(r"column 'when' \(datetime, datetime64\[\w+\]\): cannot convert 'soon' "
                     r"\(row 1\) to a date/time", message)
    assert "The model takes 6 columns: amount, count, country, online, when, note." in message


def test_bad_booleans_and_numbers_for_dates_are_refused(sig: Signature,
                                                         frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match=r"'online' \(boolean, bool\): cannot convert "
                                           r"'maybe' \(row 1\) to true/false"):
        sig.validate(frame.head(2).assign(online=["yes", "maybe"]))
    with pytest.raises(InvalidInput, match=r"'when' .*cannot convert 5 \(row 0\)"):
        sig.validate(frame.head(2).assign(when=[5, 6]))


def test_unseen_categories_are_counted_under_allow(sig: Signature, frame: pd.DataFrame) -> None:
    given = frame.head(3).assign(country=["FR", "JP", "JP"])
    out = sig.validate(given)
    assert out["country"].tolist() == ["FR", "JP", "JP"]
    assert sig.unseen(given) == {"country": 2}
    assert sig.unseen(frame) == {}


def test_unseen_categories_are_refused_under_error(sig: Signature, frame: pd.DataFrame) -> None:
    given = frame.head(3).assign(country=["FR", "JP", None])
    with pytest.raises(InvalidInput, match=r"column 'country': 1 value not seen in training "
                                           r"\('JP'\)"):
        strict(sig).validate(given)
    assert strict(sig).validate(frame) is frame  # missing values are not unseen
    big = make_frame(200).assign(country="BR")
    with pytest.raises(InvalidInput, match=r"'country': 200 values not seen .*\('BR'\)"):
        strict(sig).validate(big)


def test_invalid_unseen_policy_is_refused(sig: Signature) -> None:
    with pytest.raises(InvalidInput, match="Invalid unseen_categories policy 'warn'"):
        dataclasses.replace(sig, unseen_categories="warn")


def test_out_of_range_counts_numeric_values_outside_training(sig: Signature,
                                                             frame: pd.DataFrame) -> None:
    high, low = frame["amount"].max(), frame["amount"].min()
    given = frame.head(4).assign(amount=[high + 1, -1.0, None, low], count=["99", 1, 2, 3])
    assert sig.out_of_range(given) == {"amount": 2, "count": 1}
    assert sig.out_of_range(frame) == {}


def test_records_match_the_dataframe_path(sig: Signature, frame: pd.DataFrame) -> None:
    records = [{"amount": 3, "count": 2, "country": "FR", "online": True,
                "when": "2024-01-01T10:00:00", "note": "fuel stop", "ignored": 1},
               {"amount": None, "count": 5, "country": "US", "online": "false",
                "when": None}]
    out = sig.validate_records(records)
    pd.testing.assert_frame_equal(out, sig.validate(pd.DataFrame(records)))
    assert out["note"].isna().tolist() == [False, True]
    one = sig.validate_records(records[0])
    assert len(one) == 1 and one["when"].iloc[0] == pd.Timestamp("2024-01-01T10:00:00")


def test_records_errors(sig: Signature) -> None:
    with pytest.raises(InvalidInput, match="No records to predict on"):
        sig.validate_records([])
    with pytest.raises(InvalidInput, match="Expected a record"):
        sig.validate_records(["amount"])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="missing columns 'count', 'country', 'online', "
                                           "'when', 'note'"):
        sig.validate_records({"amount": 1})


def test_duplicated_columns_and_non_frames_are_refused(sig: Signature,
                                                       frame: pd.DataFrame) -> None:
    twice = pd.concat([frame, frame[["amount"]]], axis=1)
    with pytest.raises(InvalidInput, match="duplicated column names: amount"):
        sig.validate(twice)
    with pytest.raises(InvalidInput, match="Expected a pandas DataFrame, got list"):
        sig.validate([1, 2])  # type: ignore[arg-type]


def test_object_and_category_training_dtypes() -> None:
    X = pd.DataFrame({"code": pd.Series(["a", "b"], dtype=object),
                      "grade": pd.Categorical(["x", "y"]), "n": [1.5, 2.5]})
    sig = Signature(tuple([
        InputColumn("code", "categorical", "object", False, ("a", "b")),
        InputColumn("grade", "categorical", "category", False, ("x", "y")),
        InputColumn("n", "numeric", "float64", False, None, 1.5, 2.5)]),
        "regression", "y", None)
    out = sig.validate(pd.DataFrame({"code": pd.Series([1, None], dtype=object),
                                     "grade": ["x", "z"], "n": ["1", 2]}))
    assert out["code"].dtype == object and out["code"].tolist()[0] == "1"
    assert sig.validate(X[["n", "grade", "code"]])["code"].dtype == object
    assert isinstance(out["grade"].dtype, pd.CategoricalDtype)
    assert out["n"].tolist() == [1.0, 2.0]
    assert sig.validate(X) is X


@settings(max_examples=30, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "amount": st.one_of(st.none(), st.floats(-1e6, 1e6), st.integers(-1000, 1000)),
    "count": st.one_of(st.none(), st.integers(0, 100)),
    "country": st.one_of(st.none(), st.sampled_from(["FR", "DE", "JP"])),
    "online": st.one_of(st.none(), st.booleans()),
    "when": st.one_of(st.none(), st.datetimes().map(lambda d: d.isoformat())),
    "note": st.one_of(st.none(), st.text(max_size=5)),
}), min_size=1, max_size=5))
def test_records_and_frames_agree(records: list[dict]) -> None:
    frame = make_frame(20)
    sig = Signature.from_frame(frame, make_schema(frame), "regression", None)
    pd.testing.assert_frame_equal(sig.validate_records(records),
                                  sig.validate(pd.DataFrame(records)))


_NUMBERS = Signature(tuple(InputColumn(f"x{i}", "numeric", "float64", True, None, 0.0, 1.0)
                           for i in range(3)), "regression", "y", None)


@settings(max_examples=40, deadline=None)
@given(st.fixed_dictionaries({f"x{i}": st.one_of(
    st.none(), st.floats(allow_nan=True), st.integers(-10**6, 10**6), st.booleans(),
    st.sampled_from(["1.5", "", "abc", "nan"]), st.integers(10**400, 10**401))
    for i in range(3)}))
def test_one_numeric_record_takes_the_fast_path_with_the_same_outcome(record: dict) -> None:
    try:
        fast = _NUMBERS.frame(_NUMBERS.coerce_records(record))
    except InvalidInput as e:  # the same error the frame path gives
        with pytest.raises(InvalidInput) as slow:
            _NUMBERS.validate(pd.DataFrame([record]))
        assert str(slow.value) == str(e)
        return
    pd.testing.assert_frame_equal(fast, _NUMBERS.validate(pd.DataFrame([record])))


def test_combine_joins_columns_and_frames_in_order(sig: Signature) -> None:
    records = [{"amount": a, "count": 2, "country": "FR", "online": True,
                "when": "2024-01-01T10:00:00", "note": None} for a in (1.0, 2.0, 3.0)]
    parts = [sig.coerce_records(records[:1]), sig.validate_records(records[1:2]),
             sig.coerce_records(records[2:])]
    expected = sig.validate_records(records)
    pd.testing.assert_frame_equal(sig.combine(parts), expected)
    pd.testing.assert_frame_equal(sig.combine([parts[0], parts[2]]),
                                  expected.iloc[[0, 2]].reset_index(drop=True))
    with pytest.raises(InvalidInput, match="missing column 'x2'"):
        _NUMBERS.coerce_records({"x0": 1, "x1": 2})


def test_out_of_range_of_an_all_float_frame_counts_per_column() -> None:
    frame = pd.DataFrame({"x0": [-0.5, 0.5, 2.0, np.nan], "x1": [0.0, 1.0, 0.5, 0.2],
                          "x2": [9.0, 9.0, -9.0, 0.5]})
    assert _NUMBERS.out_of_range(frame) == {"x0": 2, "x2": 3}  # NaN is not out of range
    assert _NUMBERS.out_of_range(frame[["x2", "x1", "x0"]]) == {"x0": 2, "x2": 3}


@pytest.mark.parametrize("kind", ["float", "int", "bool", "mixed", "text", "other columns"])
def test_stack_frames_is_concat_with_dtypes_kept(kind: str) -> None:
    """Every path of stack_frames (one matrix, column by column, pd.concat) gives what
    ``pd.concat(ignore_index=True)`` gives."""
    from forgeline.packaging.coercion import stack_frames

    rng = np.random.default_rng(7)
    columns = pd.Index(["a", "b"])

    def frame(n: int) -> pd.DataFrame:
        values = {"float": lambda: rng.normal(size=n), "int": lambda: rng.integers(0, 9, n),
                  "bool": lambda: rng.random(n) > 0.5,
                  "text": lambda: rng.choice(["x", "y", None], n)}
        a = values.get(kind, values["float"])()
        b = rng.integers(0, 9, n) if kind == "mixed" else values.get(kind, values["float"])()
        return pd.DataFrame({"a": a, "b": b}, index=range(10, 10 + n)).set_axis(columns,
                                                                                axis=1)

    frames = [frame(n) for n in (1, 3, 2)]
    if kind == "other columns":
        frames[1] = frames[1].rename(columns={"b": "c"})
    stacked = stack_frames(frames)
    pd.testing.assert_frame_equal(stacked, pd.concat(frames, ignore_index=True))
