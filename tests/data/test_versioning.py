"""dataset_version: a digest of the content, stable and sensitive to every cell."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeline.data.io import load_table
from forgeline.data.versioning import content_digest, dataset_version

ROW = st.tuples(st.integers(-10**12, 10**12),
                st.floats(allow_nan=True, allow_infinity=True, width=64),
                st.text(max_size=12), st.booleans())


def _frame(rows: list[tuple[int, float, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["n", "x", "s", "b"]).astype(
        {"n": "int64", "x": "float64", "s": object, "b": bool})


def _different(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) != math.isnan(b)
        return a != b  # -0.0 and 0.0 are one value (pandas hashes them alike since 3.x)
    return a != b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=30))
def test_same_content_same_digest(rows: list[tuple[int, float, str, bool]]) -> None:
    first, second = _frame(rows), _frame(list(rows))
    shifted = first.set_axis(range(100, 100 + len(first)))  # the index is not content
    assert content_digest(first) == content_digest(second) == content_digest(shifted)
    assert content_digest(first) == content_digest(first.copy(deep=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, min_size=1, max_size=30), data=st.data())
def test_a_changed_cell_changes_the_digest(rows: list[tuple[int, float, str, bool]],
                                           data: st.DataObject) -> None:
    row = data.draw(st.integers(0, len(rows) - 1), label="row")
    column = data.draw(st.integers(0, 3), label="column")
    new = data.draw(ROW, label="new")[column]
    if not _different(rows[row][column], new):
        return
    changed = list(rows)
    changed[row] = tuple(new if i == column else cell for i, cell in enumerate(rows[row]))
    assert content_digest(_frame(rows)) != content_digest(_frame(changed))


def test_order_names_and_dtypes_count(churn: pd.DataFrame) -> None:
    base = content_digest(churn)
    assert content_digest(churn.iloc[::-1]) != base  # row order
    assert content_digest(churn[list(churn.columns[::-1])]) != base  # column order
    assert content_digest(churn.rename(columns={"age": "years"})) != base
    assert content_digest(churn.astype({"age": "float64"})) != base
    assert content_digest(churn.iloc[:-1]) != base
    assert content_digest(churn.iloc[:0]) != content_digest(churn.iloc[:0, :3])


def test_dataset_version_entity(tmp_path: Path, churn: pd.DataFrame) -> None:
    path = tmp_path / "churn.parquet"
    churn.to_parquet(path, index=False)
    loaded = load_table(path)
    dataset = dataset_version(loaded, "churn", str(path))
    assert dataset.digest == dataset_version(load_table(path), "other", "x").digest
    assert len(dataset.digest) == 64 and int(dataset.digest, 16) >= 0
    assert (dataset.name, dataset.source) == ("churn", str(path))
    assert (dataset.num_rows, dataset.num_columns) == (3000, 10)
    assert dataset.schema["age"] == "int64" and dataset.schema["churned"] == "int64"
    assert list(dataset.schema) == list(churn.columns)


def test_unhashable_cells_are_hashed_as_text() -> None:
    frame = pd.DataFrame({"tags": [["a", "b"], ["c"]], "n": [1, 2]})
    other = pd.DataFrame({"tags": [["a", "b"], ["d"]], "n": [1, 2]})
    assert content_digest(frame) == content_digest(frame.copy())
    assert content_digest(frame) != content_digest(other)


def test_large_frame_digest_is_cheap() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200_000), "k": rng.integers(0, 9, 200_000)})
    changed = frame.copy()
    changed.loc[123_456, "x"] += 1e-9
    assert content_digest(frame) != content_digest(changed)
