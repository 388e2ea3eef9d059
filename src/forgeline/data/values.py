"""What a column's values look like: numbers, dates, category strings, identifier names.

Inference, validation, profiling, splitting, the leakage checks and monitoring must agree
on what counts as a number, a date, a category string or an identifier name, so they all
ask here.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

SAMPLE = 10_000  # values looked at by the per-column heuristics

# A column named like an identifier: "id", "user_id", "order-key", "CustomerId", "uuid",
# or the index pandas writes to a CSV ("Unnamed: 0").
_ID_NAME = re.compile(r"(?:^|[_\s.\-])(?:id|uuid|guid|pk|key)$|^(?:index|row_?(?:id|num|number)"
                      r"|record_?(?:id|no)|unnamed: ?\d+)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9](?:Id|ID|Uuid|UUID|Key)$")

# The start of a date as people write them: 2024-01-05, 2024/1/5, 05.01.2024, 5 Jan 2024,
# Jan 5, 2024. Bare numbers ("12") and words ("March") parse as dates too, so they must not
# reach the parser: a four-digit year is required.
_DATE = re.compile(r"^\s*(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
                   r"|\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{4}|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})")
_LEADING_ZERO = re.compile(r"^\s*0\d")
# What junk in a column of numbers looks like: symbols ("?", "x!", "#VALUE!", "$12") or a
# word for "no value"; "S", "XL" or "red" are not junk but categories.
_JUNK = re.compile(r"^\W*$|[?!#*@$%^&=~|<>{}\[\];\\]|^\s*(?:n/?a|nan|none|null|nil|missing"
                   r"|unknown|error|tbd|-+)\s*$", re.IGNORECASE)


def looks_like_id_name(name: object) -> bool:
    """Whether a column name says it holds identifiers (``id``, ``user_id``, ``UserId``...)."""
    text = str(name).strip()
    return bool(_ID_NAME.search(text) or _CAMEL_ID.search(text))


def is_textual(series: pd.Series) -> bool:
    """Object, string or categorical dtype: values that are not already typed numbers."""
    return bool(ptypes.is_object_dtype(series.dtype) or ptypes.is_string_dtype(series.dtype)
                or isinstance(series.dtype, pd.CategoricalDtype))


def is_number_dtype(series: pd.Series) -> bool:
    """A numeric dtype that is not boolean."""
    return bool(ptypes.is_numeric_dtype(series.dtype) and not ptypes.is_bool_dtype(series.dtype))


def sample(values: pd.Series, n: int = SAMPLE, seed: int = 0) -> pd.Series:
    """At most ``n`` of ``values``, drawn with a fixed seed (all of them when fewer)."""
    if len(values) <= n:
        return values
    picked = np.random.default_rng(seed).choice(len(values), n, replace=False)
    return values.iloc[np.sort(picked)]


def nunique(series: pd.Series) -> int:
    """Distinct non-missing values; unhashable values (lists from Parquet) count as text."""
    try:
        return int(series.nunique(dropna=True))
    except TypeError:
        return int(series.dropna().astype(str).nunique())


def to_numbers(series: pd.Series) -> pd.Series:
    """Values as float64; anything that is not a number becomes NaN."""
    if ptypes.is_bool_dtype(series.dtype):
        return series.astype("float64")
    if is_number_dtype(series):
        return series.astype("float64")
    return pd.to_numeric(series.astype(object), errors="coerce").astype("float64")


def junk(series: pd.Series) -> tuple[int, list[str]]:
    """Non-missing values that are not numbers: how many, and the most frequent few."""
    if not is_textual(series):
        return 0, []
    numbers = to_numbers(series)
    bad = series[series.notna() & numbers.isna()]
    if bad.empty:
        return 0, []
    examples = bad.astype(str).value_counts().index[:5]
    return len(bad), [str(v) for v in examples]


def looks_numeric(values: pd.Series) -> bool:
    """Non-missing text values that are mostly numbers with a little junk (``?``, ``n/a``).

    True when at least 80% parse as numbers, or at least half do and the rest is junk
    (symbols such as "?", "x!", "#VALUE!", or words such as "unknown") or at most three
    distinct markers among ten or more distinct numbers. Codes with leading zeros ("02134")
    are categories, not numbers.
    """
    if values.empty:
        return False
    numbers = pd.to_numeric(values.astype(object), errors="coerce")
    ok = numbers.notna()
    share = float(ok.mean())
    if share < 0.5:
        return False
    text = values[ok].astype(str)
    if text.str.match(_LEADING_ZERO).mean() > 0.05:
        return False
    if share >= 0.8:
        return True
    others = pd.Series(values[~ok].astype(str).unique())
    if others.str.contains(_JUNK).all():
        return True
    return bool(len(others) <= 3 and numbers[ok].nunique() >= 10)


def date_share(values: pd.Series) -> float:
    """Share of non-missing text values that look like dates and parse as dates."""
    if values.empty:
        return 0.0
    text = values.astype(str)
    shaped = text.str.match(_DATE)
    if shaped.mean() < 0.5:
        return float(shaped.mean())
    return float(parse_datetimes(text[shaped]).notna().sum() / len(text))


def _parse(series: pd.Series, fmt: str | None) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": a guess, not a problem
        try:
            return pd.to_datetime(series, errors="coerce", format=fmt)
        except (ValueError, TypeError, OverflowError):
            # mixed UTC offsets: compare them on one clock
            return pd.to_datetime(series, errors="coerce", format=fmt, utc=True)


def parse_datetimes(series: pd.Series) -> pd.Series:
    """Datetimes from a datetime, numeric or text column; unparseable values become NaT.

    Text is tried as ISO 8601 first, then with the format pandas infers from the first value;
    per-value parsing (slow) only for small columns.
    """
    if ptypes.is_datetime64_any_dtype(series.dtype):
        return series
    present = int(series.notna().sum())
    best = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    formats: list[str | None] = ["ISO8601", None] + (["mixed"] if len(series) <= 20_000 else [])
    for fmt in formats:
        try:
            parsed = _parse(series, fmt)
        except (ValueError, TypeError, OverflowError):
            continue
        if parsed.notna().sum() > best.notna().sum():
            best = parsed
        if best.notna().sum() >= 0.95 * present:
            break
    return best


def time_values(series: pd.Series) -> pd.Series:
    """A time column as sortable values: numbers stay numbers, anything else becomes a
    datetime; times with a timezone are compared as naive UTC."""
    if is_number_dtype(series):
        return series
    times = parse_datetimes(series)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return times


def as_categories(series: pd.Series) -> pd.Series:
    """Values as the strings that name categories; missing stays missing.

    Whole numbers lose their ".0" (1.0 and 1 are the category "1") and booleans read "True"
    and "False", so a column keeps its category names whichever dtype it was loaded with.
    """
    present = series.notna()
    if ptypes.is_bool_dtype(series.dtype):
        out = series.astype(object).astype(str)
    elif is_number_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        whole = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**53)
        text = series.astype(object).astype(str)
        if whole.any():
            text[whole] = values[whole].astype("int64").astype(str)
        out = text
    else:
        out = series.astype(object).astype(str)
    return out.where(present)


def category_counts(series: pd.Series) -> pd.Series:
    """Rows per category name (see :func:`as_categories`), most frequent first.

    Counts the raw values first and names only the distinct ones, so a million rows of a
    few categories cost one ``value_counts``.
    """
    try:
        counts = series.value_counts(dropna=True, sort=False)
    except TypeError:  # unhashable cells: their text
        counts = series.dropna().astype(str).value_counts(sort=False)
    names = as_categories(pd.Series(counts.index))
    merged = counts.groupby(names.to_numpy(), sort=False).sum()
    return merged.sort_values(ascending=False, kind="stable")


def type_names(series: pd.Series) -> list[str]:
    """The Python types of a column's non-missing values, most frequent first (a sample)."""
    values = sample(series.dropna())
    return [t.__name__ for t in values.map(type).value_counts().index]


def is_mixed(series: pd.Series) -> bool:
    """Numbers and strings (or other types) together in one object column."""
    if not ptypes.is_object_dtype(series.dtype):
        return False
    kind = ptypes.infer_dtype(series, skipna=True)
    return kind in ("mixed", "mixed-integer")
