"""Coercion of input frames to a signature's dtypes, and stacking of validated frames.

Behind :meth:`Signature.validate`, the serving path's batch statistics and the prediction
log's writer.

Each input column gets a :class:`ColumnPlan`, built once from the training dtype. Coercing
a column that already has its training dtype costs a dtype comparison; the others go
through numpy first and pandas only where numpy cannot do the job, because the serving
path validates one row per request and per-column pandas calls would dominate its cost.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt
from pandas.api.extensions import ExtensionDtype

__all__ = ["ColumnPlan", "Part", "category_key", "column_values", "count_unseen",
           "frame_from_arrays", "join_columns", "rows_of", "stack_frames"]

Part = pd.DataFrame | list[Any]  # a frame, or its columns (Signature.coerce_records)
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_FLOAT64 = np.dtype("float64")
_SMALL = 32  # up to this many rows, plain Python loops beat pandas' vectorised calls
_NUMPY_DATES = frozenset({"string", "datetime", "datetime64", "date", "empty"})


def category_key(value: Any) -> str:
    """The string a category is recorded and compared as (``True`` -> ``"True"``)."""
    return value if isinstance(value, str) else str(value)


def _is_null(value: Any) -> bool:
    # "" counts as missing: CSV and form clients send it for an empty field.
    return value is None or value is pd.NA or value is pd.NaT or value == "" or (
        isinstance(value, float) and value != value)


def _first_bad(original: Any, bad: np.ndarray) -> tuple[int, Any]:
    pos = int(np.flatnonzero(bad)[0])
    return pos, original[pos]


def _bad_value(pos: int, value: Any, expected: str) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return f"cannot convert {value!r} (row {pos}) to {expected}"


def _as_object(values: Any) -> np.ndarray:
    return values if isinstance(values, np.ndarray) and values.dtype == object else np.asarray(
        values, dtype=object)


def _blank_to_nan(obj: np.ndarray) -> np.ndarray:
    blank = obj == ""
    if blank.any():
        obj = obj.copy()
        obj[blank] = np.nan
    return obj


class ColumnPlan:
    """How to bring one column to its training dtype.

    Args:
        name: the column name.
        dtype: the training dtype as a string, e.g. ``"float64"`` or ``"datetime64[ns]"``.
        categories: the categories seen in training (as strings), or None.
    """

    __slots__ = ("_convert", "categories", "dtype", "family", "name")

    def __init__(self, name: str, dtype: str, categories: tuple[str, ...] | None) -> None:
        self.name = name
        self.categories = frozenset(categories) if categories is not None else None
        try:
            self.dtype: Any = pdt.pandas_dtype(dtype)
        except TypeError:
            self.dtype, self.family = None, "other"  # an unknown dtype: passed through
            self._convert = self._other
            return
        if pdt.is_bool_dtype(self.dtype):
            self.family = "bool"
        elif pdt.is_integer_dtype(self.dtype):
            self.family = "int"
        elif pdt.is_float_dtype(self.dtype):
            self.family = "float"
        elif pdt.is_datetime64_any_dtype(self.dtype):
            self.family = "datetime"
        elif isinstance(self.dtype, pd.CategoricalDtype):
            self.family = "category"
        elif pdt.is_string_dtype(self.dtype) or self.dtype == object:
            self.family = "string"
        else:
            self.family = "other"
        self._convert = getattr(self, f"_{self.family}")

    def coerce(self, values: Any) -> tuple[Any, str | None]:
        """``(converted values, None)``, or ``(values, what could not be converted)``."""
        dtype = values.dtype
        if self.dtype is None or (dtype == self.dtype and self.dtype != object) or (
                self.family == "category" and isinstance(dtype, pd.CategoricalDtype)):
            return values, None
        return self._convert(values)  # object columns too: their values must be strings

    # -- one method per family ----------------------------------------------------------
    def _other(self, values: Any) -> tuple[Any, str | None]:
        return values, None

    def _float(self, values: Any, expected: str = "a number") -> tuple[Any, str | None]:
        target = self.dtype if self.family == "float" else _FLOAT64
        if isinstance(values, np.ndarray):
            if values.dtype.kind in "iufb":
                return values.astype(target), None
            if values.dtype == object:
                try:  # numbers, numeric strings and None: numpy reads them all
                    return values.astype(target), None
                except (TypeError, ValueError, OverflowError):
                    pass
        if pdt.is_datetime64_any_dtype(values.dtype):
            return values, f"expected {expected}, got datetime values"
        if pdt.is_numeric_dtype(values.dtype) or pdt.is_bool_dtype(values.dtype):
            return np.asarray(values.to_numpy(dtype=_FLOAT64, na_value=np.nan),
                              dtype=target), None
        obj = _blank_to_nan(_as_object(values))
        try:
            return obj.astype(target), None
        except (TypeError, ValueError, OverflowError):
            pass
        try:
            parsed = pd.to_numeric(pd.Series(obj, copy=False), errors="coerce").to_numpy(
                dtype=_FLOAT64, na_value=np.nan)
        except OverflowError:  # an integer beyond float64: one value at a time
            parsed = np.fromiter((_number_or_nan(v) for v in obj), dtype=_FLOAT64,
                                 count=len(obj))
        bad = np.isnan(parsed) & ~pd.isna(obj)
        if not bad.any():  # pd.NA and friends, which numpy cannot cast
            return parsed.astype(target), None
        pos, value = _first_bad(obj, bad)
        return values, _bad_value(pos, value, expected)

    def _int(self, values: Any) -> tuple[Any, str | None]:
        if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
            return values.astype(self.dtype), None
        floats, problem = self._float(values, "a whole number")
        if problem is not None:
            return values, problem
        # Nulls or fractions cannot live in an int64 column; float64 keeps them.
        if isinstance(self.dtype, np.dtype) and not np.isnan(floats).any() and np.array_equal(
                floats, np.round(floats)):
            return floats.astype(self.dtype), None
        return floats, None

    def _bool(self, values: Any) -> tuple[Any, str | None]:
        obj = _as_object(values)
        if len(obj) <= _SMALL:
            mapped = [_to_bool(v) for v in obj]
            codes = np.arange(len(obj))
        else:  # map each distinct value once
            codes, uniques = pd.factorize(obj, use_na_sentinel=True)
            mapped = [_to_bool(v) for v in uniques]
        for pos, result in enumerate(mapped):
            if result is _BAD:
                row = int(np.flatnonzero(codes == pos)[0])
                return values, _bad_value(row, obj[row], "true/false")
        if any(v is None for v in mapped) or (codes < 0).any():
            out = np.empty(len(mapped) + 1, dtype=object)
            out[:-1] = mapped
            out[-1] = None  # codes of -1 (missing) land here
            return out[codes], None
        return np.asarray(mapped, dtype=bool)[codes], None

    def _datetime(self, values: Any) -> tuple[Any, str | None]:
        expected = "a date/time (ISO 8601, e.g. 2024-05-01T12:30:00)"
        tz = getattr(self.dtype, "tz", None)
        if pdt.is_datetime64_any_dtype(values.dtype):
            if tz is None and getattr(values.dtype, "tz", None) is None:
                return pd.Series(values, copy=False).astype(self.dtype).array, None
            obj = values
        elif len(values) and (pdt.is_numeric_dtype(values.dtype)
                              or pdt.is_bool_dtype(values.dtype)):
            # A bare number has no unit: refuse it rather than guess nanoseconds.
            return values, _bad_value(0, values[0], expected)
        else:
            obj = _blank_to_nan(_as_object(values))
            if tz is None and pdt.infer_dtype(obj, skipna=True) in _NUMPY_DATES:
                parsed = _numpy_datetimes(obj, self.dtype)
                if parsed is not None:
                    return parsed, None
        series = pd.Series(obj, copy=False)
        parsed = None
        for fmt in ("ISO8601", "mixed"):  # "mixed" guesses each value: only when needed
            try:
                parsed = pd.to_datetime(series, errors="coerce", utc=True, format=fmt)
            except (TypeError, ValueError, OverflowError):
                continue
            bad = (parsed.isna() & series.notna()).to_numpy()
            if not bad.any():
                break
        else:
            bad = series.notna().to_numpy() if parsed is None else bad
            pos, value = _first_bad(np.asarray(obj, dtype=object), bad)
            return values, _bad_value(pos, value, expected)
        parsed = parsed.dt.tz_convert(tz)  # naive columns hold UTC wall time
        return parsed.astype(self.dtype).array, None

    def _string(self, values: Any) -> tuple[Any, str | None]:
        if isinstance(self.dtype, pd.StringDtype):  # it writes non-strings as str(value)
            return self._strings(values), None
        if not (isinstance(values.dtype, pd.StringDtype) or pdt.infer_dtype(
                values, skipna=True) in ("string", "empty")):
            obj = _as_object(values)
            null = pd.isna(obj)
            strings = obj.astype(str).astype(object)
            strings[null] = np.nan
            values = strings
        if self.dtype == object:
            return _as_object(values), None
        return self._strings(values), None

    def _strings(self, values: Any) -> Any:
        """``pd.array(values, dtype=self.dtype)`` by the extension array's own constructor,
        which pd.array calls after checks that cost ~50 us a column (a third of one row)."""
        if isinstance(self.dtype, ExtensionDtype):
            return self.dtype.construct_array_type()._from_sequence(values, dtype=self.dtype)
        return pd.array(values, dtype=self.dtype)

    def _category(self, values: Any) -> tuple[Any, str | None]:
        strings, _ = self._string(values) if not isinstance(
            values.dtype, pd.CategoricalDtype) else (values, None)
        return pd.Categorical(strings), None


_BAD = object()


def _numpy_datetimes(obj: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """ISO 8601 strings without an offset -> datetime64, ~1000x cheaper than pandas for one
    value; None when numpy cannot read them all (pandas then tries).
    """
    nulls = pd.isna(obj)
    if nulls.any():
        obj = obj.copy()
        obj[nulls] = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # an offset makes numpy warn: leave it to pandas
            return obj.astype(dtype)
    except (TypeError, ValueError, OverflowError, Warning):
        return None


def _to_bool(value: Any) -> Any:
    """True, False, None (missing) or ``_BAD``."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if _is_null(value):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return bool(value) if value in (0, 1) else _BAD
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return _BAD


def column_values(part: Part, position: int) -> Any:
    """The values of column ``position`` of a frame, or of a list of column arrays
    (:meth:`Signature.coerce_records`), without building a Series.

    ``DataFrame._get_column_array`` is private but stable since pandas 1.x and about 15x
    cheaper than ``df.iloc[:, i]``; the public route is the fallback.
    """
    if not isinstance(part, pd.DataFrame):
        return part[position]
    try:
        return part._get_column_array(position)
    except AttributeError:  # pragma: no cover - a pandas without it
        return part.iloc[:, position].array


def rows_of(part: Part) -> int:
    """The number of rows of a frame or of a list of columns."""
    return len(part) if isinstance(part, pd.DataFrame) else len(part[0])


def join_columns(parts: Sequence[Sequence[Any]]) -> list[np.ndarray] | None:
    """Each column of ``parts`` (lists of column arrays, alike) joined end to end, far
    cheaper than concatenating frames; None when a column is not numpy arrays throughout."""
    joined = []
    for column in zip(*parts, strict=True):
        if not all(isinstance(a, np.ndarray) for a in column):
            return None
        joined.append(np.concatenate(column))
    return joined


def stack_frames(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Frames one under the other, with a new RangeIndex and their dtypes kept.

    For many small frames with the same columns (one model's requests) this is far cheaper
    than ``pd.concat``: one matrix each when all columns share a numpy dtype, else column
    by column; ``pd.concat`` is the fallback.
    """
    columns = frames[0].columns
    if all(f.columns is columns or f.columns.equals(columns) for f in frames[1:]):
        dtypes = set(frames[0].dtypes)
        dtype = dtypes.pop() if len(dtypes) == 1 else None
        if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
            matrices = [f.to_numpy() for f in frames]
            if all(m.dtype == dtype for m in matrices):
                return pd.DataFrame(np.concatenate(matrices), columns=columns, copy=False)
        joined = join_columns([[column_values(f, i) for i in range(len(columns))]
                               for f in frames])
        if joined is not None:
            return pd.DataFrame(dict(zip(columns, joined, strict=True)))
    return pd.concat(frames, ignore_index=True)


def _number_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return np.nan


def frame_from_arrays(arrays: list[Any], columns: pd.Index, index: pd.Index,
                      plans: tuple[ColumnPlan, ...]) -> pd.DataFrame:
    """A DataFrame from column arrays, through pandas' cheapest constructor available."""
    try:
        frame = pd.DataFrame._from_arrays(arrays, columns=columns, index=index)
    except AttributeError:  # pragma: no cover - a pandas without it
        frame = pd.DataFrame(dict(zip(columns, arrays, strict=True)), index=index, copy=False)
    for i, plan in enumerate(plans):
        # pandas 3 turns object arrays of strings into its str dtype; keep training's.
        if plan.dtype == object and not pdt.is_object_dtype(frame.dtypes.iloc[i]):
            frame.isetitem(i, pd.Series(arrays[i], index=index, dtype=object, copy=False))
    return frame


def count_unseen(values: Any, categories: frozenset[str]) -> tuple[int, list[Any]]:
    """How many non-null values are not among ``categories``, and the first few of them."""
    if len(values) <= _SMALL:
        found = [v for v in values if not _is_null(v) and category_key(v) not in categories]
        return len(found), list(dict.fromkeys(found))[:5]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    unknown = [i for i, v in enumerate(uniques)
               if not _is_null(v) and category_key(v) not in categories]
    if not unknown:
        return 0, []
    return int(np.isin(codes, unknown).sum()), [uniques[i] for i in unknown[:5]]
