"""Infer column kinds and the learning task from the data.

Column kinds (``infer_kind``), first rule that matches wins; an override always wins:

- bool dtype, or exactly two distinct values that read as a yes/no pair ({0, 1},
  {"yes", "no"}, {"true", "false"}, {"y", "n"}, {"t", "f"}, {"on", "off"}; case and
  spaces ignored) → BOOLEAN. Numeric 0/1 flags are booleans on purpose: their drift is a
  share, and one-hot encoding them loses nothing. Other two-valued numbers stay NUMERIC.
- datetime dtype, or text of which at least 95% of a sample looks like dates (a four-digit
  year is required, so "12" or "March" are not dates) → DATETIME.
- whole numbers, all distinct, at least 20 of them, that are sorted (a row number) or whose
  column is named like an identifier (``id``, ``user_id``, ``UserId``, ``uuid``,
  ``Unnamed: 0``; 95% distinct is enough then) → ID. Other numbers → NUMERIC.
- text that is mostly numbers (80%, or half with at most three junk markers such as "?")
  → NUMERIC, so validation can point at the junk; codes with leading zeros stay text.
- text with more than 30 characters on average, spaces in most values and at least half of
  them distinct → TEXT (free text for TF-IDF).
- text with more than 50 values, over 90% distinct and at most 40 characters on average
  (codes, UUIDs, names) → ID; a name like an identifier lowers that to 20 values, 95%.
- anything else → CATEGORICAL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from forgeline.data import values as v
from forgeline.data.schema import ColumnInfo, ColumnKind, Schema
from forgeline.entities import Task
from forgeline.errors import InvalidInput

__all__ = ["MAX_CLASSES", "infer_kind", "infer_schema", "infer_task"]

MAX_CLASSES = 50  # more distinct whole numbers than this (or 5% of rows) is a regression
_BOOLEAN_PAIRS = [{"0", "1"}, {"0.0", "1.0"}, {"yes", "no"}, {"true", "false"}, {"y", "n"},
                  {"t", "f"}, {"on", "off"}]
_MIN_ID_ROWS = 20


def _available(df: pd.DataFrame, limit: int = 8) -> str:
    names = [repr(str(c)) for c in df.columns[:limit]]
    more = f" and {len(df.columns) - limit} more" if len(df.columns) > limit else ""
    return ", ".join(names) + more


def _whole_number_id(present: pd.Series, name: object, n_unique: int) -> bool:
    if len(present) < _MIN_ID_ROWS:
        return False
    values = present.to_numpy(dtype="float64")
    if not np.all(np.floor(values) == values):
        return False
    unique_share = n_unique / len(present)
    if unique_share == 1.0 and (present.is_monotonic_increasing
                                or present.is_monotonic_decreasing):
        return True
    return v.looks_like_id_name(name) and unique_share >= 0.95


def _text_kind(present: pd.Series, name: object, n_unique: int) -> ColumnKind:
    picked = v.sample(present).astype(str)
    normal = set(picked.str.strip().str.lower().unique()[:3])
    if n_unique == 2 and normal in _BOOLEAN_PAIRS:
        return ColumnKind.BOOLEAN
    if v.looks_numeric(v.sample(present)):
        return ColumnKind.NUMERIC
    if v.date_share(picked) >= 0.95:
        return ColumnKind.DATETIME
    lengths = picked.str.len()
    mean_length = float(lengths.mean())
    unique_share = n_unique / len(present)
    if (mean_length > 30 and picked.str.contains(r"\s", regex=True).mean() >= 0.5
            and picked.nunique() >= 0.5 * len(picked)):
        return ColumnKind.TEXT
    if mean_length <= 40 and ((len(present) > 50 and unique_share > 0.9) or (
            v.looks_like_id_name(name) and len(present) >= _MIN_ID_ROWS
            and unique_share >= 0.95)):
        return ColumnKind.ID
    return ColumnKind.CATEGORICAL


def infer_kind(series: pd.Series, name: object | None = None) -> ColumnKind:
    """The kind of one column by the rules in the module docstring.

    Args:
        series: the column.
        name: its name, for the identifier hints (defaults to ``series.name``).
    """
    return _kind(series, series.name if name is None else name, None)


def _kind(series: pd.Series, name: object, n_unique: int | None) -> ColumnKind:
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return ColumnKind.BOOLEAN
    if ptypes.is_datetime64_any_dtype(dtype):
        return ColumnKind.DATETIME
    if ptypes.is_timedelta64_dtype(dtype):
        return ColumnKind.NUMERIC
    present = series.dropna()
    if present.empty:
        return ColumnKind.NUMERIC if v.is_number_dtype(series) else ColumnKind.CATEGORICAL
    n_unique = v.nunique(present) if n_unique is None else n_unique
    if v.is_number_dtype(series):
        if n_unique == 2 and set(present.unique().tolist()) == {0, 1}:
            return ColumnKind.BOOLEAN
        if _whole_number_id(present, name, n_unique):
            return ColumnKind.ID
        return ColumnKind.NUMERIC
    return _text_kind(present, name, n_unique)


def _info(series: pd.Series, name: str, kind: ColumnKind | None) -> ColumnInfo:
    """The column's info; its kind inferred when ``kind`` is None."""
    n_unique = v.nunique(series)
    kind = kind or _kind(series, name, n_unique)
    missing = float(series.isna().mean()) if len(series) else 0.0
    return ColumnInfo(name=name, kind=kind, dtype=str(series.dtype), n_unique=n_unique,
                      missing_share=missing)


def infer_schema(df: pd.DataFrame, target: str,
                 overrides: Mapping[str, ColumnKind] | None = None,
                 drop: Sequence[str] = ()) -> Schema:
    """The schema of ``df``: every column but the target and the dropped ones, and the target.

    Args:
        df: the frame as loaded.
        target: the column to predict.
        overrides: column -> kind, from the spec's ``features:`` section; wins over inference.
        drop: columns left out of the schema altogether.

    Raises:
        InvalidInput: the target, an override or a dropped column is not in the frame, or
            the target is dropped.
    """
    overrides = dict(overrides or {})
    if target not in df.columns:
        raise InvalidInput(f"Target column {target!r} is not in the data; its columns are "
                           f"{_available(df)}.",
                           hint="Set data.target to one of them (names are case-sensitive).")
    for label, names in (("drop", list(drop)), ("feature override", list(overrides))):
        unknown = [n for n in names if n not in df.columns]
        if unknown:
            raise InvalidInput(f"Unknown column(s) in {label}: "
                               f"{', '.join(repr(n) for n in unknown)}; the data has "
                               f"{_available(df)}.",
                               hint="Fix the names in the spec (they are case-sensitive).")
    if target in drop:
        raise InvalidInput(f"The target column {target!r} is listed in data.drop.",
                           hint="Remove it from data.drop; it is the column to predict.")
    for name, kind in overrides.items():
        if not isinstance(kind, ColumnKind):
            raise InvalidInput(f"Override for column {name!r} is {kind!r}, not a column kind.",
                               hint="Use one of: " + ", ".join(k.value for k in ColumnKind))
    columns = []
    for name in df.columns:
        if name == target or name in drop:
            continue
        columns.append(_info(df[name], str(name), overrides.get(name)))
    target_info = _info(df[target], target, overrides.get(target))
    if target_info.kind is ColumnKind.ID:  # a target is never an identifier: sorted labels
        number = v.is_number_dtype(df[target])
        target_info = replace(target_info, kind=ColumnKind.NUMERIC if number
                              else ColumnKind.CATEGORICAL)
    return Schema(columns=tuple(columns), target=target_info)


def _class_limit(rows: int) -> int:
    return max(10, min(MAX_CLASSES, int(0.05 * rows)))


def infer_task(y: pd.Series) -> Task:
    """The learning task a target column calls for.

    Two distinct values → BINARY. Text or categories → MULTICLASS. Whole numbers (integer
    dtype, or floats that are all whole) with at most ``max(10, min(50, 5% of rows))``
    distinct values → MULTICLASS, more → REGRESSION. Floats with fractions → REGRESSION.

    Raises:
        InvalidInput: the target is all missing, has a single value, is a date, has junk
            among numbers, or is text with a different value on nearly every row.
    """
    name = y.name
    present = y.dropna()
    if present.empty:
        raise InvalidInput(f"Target {name!r} has no values: every row is missing.",
                           hint="Check data.target names the column with the labels.")
    n_unique = v.nunique(present)
    if n_unique == 1:
        raise InvalidInput(f"Target {name!r} has a single value {str(present.iloc[0])!r}: "
                           "nothing to learn.",
                           hint="Check data.target, or any filter applied to the data.")
    if ptypes.is_datetime64_any_dtype(y.dtype) or ptypes.is_timedelta64_dtype(y.dtype):
        raise InvalidInput(f"Target {name!r} holds dates or durations ({y.dtype}).",
                           hint="Predict a number or a class derived from them instead.")
    if n_unique == 2:
        return Task.BINARY
    limit = _class_limit(len(present))
    if v.is_number_dtype(y):
        values = present.to_numpy(dtype="float64")
        whole = bool(np.all(np.floor(values) == values))
        return Task.MULTICLASS if whole and n_unique <= limit else Task.REGRESSION
    if v.looks_numeric(v.sample(present)):
        bad, examples = v.junk(present)
        if bad:
            raise InvalidInput(
                f"Target {name!r} is mostly numbers but {bad} values are not, e.g. "
                f"{', '.join(repr(e) for e in examples[:3])}.",
                hint="Clean those rows (an empty cell counts as missing and is dropped).")
        return infer_task(v.to_numbers(y).rename(name))
    if n_unique > limit and n_unique > 0.5 * len(present):
        raise InvalidInput(f"Target {name!r} has a different value on nearly every row "
                           f"({n_unique} distinct in {len(present)}): it looks like an "
                           "identifier or free text, not something to predict.",
                           hint="Check data.target; set task: multiclass if these are classes.")
    return Task.MULTICLASS
