"""The reference profile: training-data statistics that monitoring compares production to.

Monitoring never needs the training data again: everything it compares against is here.
The profile is a JSON-serialisable dict (missing or undefined statistics are ``null``)::

    {"format": 1,
     "rows": 50000,
     "columns": {name: stats, ...},       # every profiled feature column
     "target": {"name": "is_fraud", **stats} | null}

``stats`` always has ``kind`` (a ColumnKind value), ``dtype``, ``count`` (non-missing
values) and ``missing_share``; then, by kind:

- numeric: ``min``, ``max``, ``mean``, ``std`` (sample, ddof=1), ``quantiles``
  {p1, p5, p25, p50, p75, p95, p99} -- all over the finite values -- and ``bins``
  {"edges": [-inf, e1, ..., +inf], "counts": [...]}: the inner edges are the data's
  quantiles at 1/bins, 2/bins, ... (duplicates removed, so a discrete column has fewer bins),
  a bin is ``[edges[i], edges[i+1])``, and the counts add up to ``count``. Re-bin production
  values with :func:`bin_counts` and the same edges to compute PSI or Jensen-Shannon.
  The outer edges are floats ``-inf``/``inf`` (``json`` writes them as -Infinity/Infinity;
  a writer that turns them into ``null`` is understood by :func:`bin_counts` too).
- categorical, boolean: ``categories`` {value: count} for the 50 most frequent, as strings
  (see :func:`category_strings`: 1.0 and 1 are "1", booleans "True"/"False"),
  ``other_count`` (the rest), ``n_unique``.
- datetime: ``min`` and ``max`` as ISO 8601 strings (text is parsed as dates first).
- text: ``mean_length`` in characters.
- id columns are not profiled: every value is new, there is nothing to compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data import values as v
from forgeline.data.schema import ColumnKind, Schema
from forgeline.errors import InvalidInput

__all__ = ["FORMAT", "QUANTILES", "TOP_CATEGORIES", "bin_counts", "build_profile",
           "category_strings"]

FORMAT = 1
TOP_CATEGORIES = 50
QUANTILES = {"p1": 0.01, "p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95,
             "p99": 0.99}

category_strings = v.as_categories


def _num(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _edges(values: Sequence[float | None]) -> np.ndarray:
    """Profile edges as floats: ``None`` (an infinity written as null) at either end -> ±inf."""
    edges = np.array([np.nan if e is None else e for e in values], dtype="float64")
    if len(edges) and np.isnan(edges[0]):
        edges[0] = -np.inf
    if len(edges) and np.isnan(edges[-1]):
        edges[-1] = np.inf
    return edges


def bin_counts(values: Any, edges: Sequence[float | None]) -> np.ndarray:
    """How many of ``values`` fall in each profile bin ``[edges[i], edges[i+1])``.

    Missing values are not counted; ±inf go to the outer bins. Use the ``edges`` of a
    profile's numeric column to compare production data with the reference ``counts``.
    """
    inner = _edges(edges)[1:-1]
    array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    array = array[~np.isnan(array)]
    index = np.searchsorted(inner, array, side="right")
    return np.bincount(index, minlength=len(inner) + 1)


def _numeric(series: pd.Series, bins: int) -> dict[str, Any]:
    values = v.to_numbers(series).to_numpy(dtype="float64")
    present = values[~np.isnan(values)]
    finite = present[np.isfinite(present)]
    stats: dict[str, Any] = {"min": None, "max": None, "mean": None, "std": None,
                             "quantiles": dict.fromkeys(QUANTILES)}
    inner = np.array([], dtype="float64")
    if len(finite):
        levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        points = np.quantile(finite, [*QUANTILES.values(), *levels])
        stats.update(min=_num(finite.min()), max=_num(finite.max()), mean=_num(finite.mean()),
                     std=_num(finite.std(ddof=1)) if len(finite) > 1 else None,
                     quantiles={k: _num(q) for k, q in zip(QUANTILES, points, strict=False)})
        inner = np.unique(points[len(QUANTILES):])
        if not len(inner):  # one bin edge per profile, even for bins=1
            inner = np.array([float(np.median(finite))])
    counts = np.bincount(np.searchsorted(inner, present, side="right"),
                         minlength=len(inner) + 1)
    stats["bins"] = {"edges": [-np.inf, *(float(e) for e in inner), np.inf],
                     "counts": [int(c) for c in counts]}
    return stats


def _categorical(series: pd.Series) -> dict[str, Any]:
    counts = v.category_counts(series)
    top = counts.iloc[:TOP_CATEGORIES]
    return {"categories": {str(k): int(c) for k, c in top.items()},
            "other_count": int(counts.iloc[TOP_CATEGORIES:].sum()), "n_unique": len(counts)}


def _datetime(series: pd.Series) -> dict[str, Any]:
    values = v.parse_datetimes(series).dropna()
    if values.empty:
        return {"min": None, "max": None}
    return {"min": values.min().isoformat(), "max": values.max().isoformat()}


def _text(series: pd.Series) -> dict[str, Any]:
    lengths = series.dropna().astype(str).str.len()
    return {"mean_length": _num(lengths.mean()) if len(lengths) else None}


def column_profile(series: pd.Series, kind: ColumnKind, bins: int = 20) -> dict[str, Any]:
    """The statistics of one column of the given kind (see the module docstring)."""
    count = int(series.notna().sum())
    stats: dict[str, Any] = {"kind": kind.value, "dtype": str(series.dtype), "count": count,
                             "missing_share": 1 - count / len(series) if len(series) else 0.0}
    if kind is ColumnKind.NUMERIC:
        stats.update(_numeric(series, bins))
    elif kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        stats.update(_categorical(series))
    elif kind is ColumnKind.DATETIME:
        stats.update(_datetime(series))
    elif kind is ColumnKind.TEXT:
        stats.update(_text(series))
    return stats


def build_profile(df: pd.DataFrame, schema: Schema, bins: int = 20) -> dict[str, Any]:
    """The reference profile of ``df``: schema columns present in it, and the target.

    Args:
        df: the training data (the features and the target; other columns are ignored).
        schema: the kinds of its columns.
        bins: numeric bins per column (quantile edges; fewer when values repeat).
    """
    if bins < 1:
        raise InvalidInput(f"Profile bins must be at least 1, not {bins}.",
                           hint="Use the default of 20.")
    columns = {c.name: column_profile(df[c.name], c.kind, bins) for c in schema.columns
               if c.name in df.columns and c.kind is not ColumnKind.ID}
    target = None
    if schema.target.name in df.columns:
        target = {"name": schema.target.name,
                  **column_profile(df[schema.target.name], schema.target.kind, bins)}
    return {"format": FORMAT, "rows": len(df), "columns": columns, "target": target}
