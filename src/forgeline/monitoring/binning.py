"""Current data re-binned on the reference profile's bins, one pass per column.

A :class:`Binned` column keeps what every check needs from that pass: the bucket of each
row (one extra last bucket for missing and unparseable values), the values as numbers
(numeric columns) and the counts that quality reports (missing, not parseable, out of
range, unseen). Drift then only counts buckets, overall and per window at once, with one
``bincount``. Numeric buckets are found by adding up ``value >= edge`` over the edges:
for the profile's 20 bins that is several times faster than ``searchsorted``.

Categorical buckets are the profile's categories (its 50 most frequent) plus one last
bucket, ``(other)``, holding the reference's ``other_count`` and every current value that
is not among those categories. Whether such a value is *unseen* (never in training) is only
known when the complete set of training categories is: the signature's (it records up to
1000), the profile's when its ``other_count`` is 0, or a reference DataFrame's.
Otherwise a value outside the top 50 may be one of the reference's rarer categories; it is
counted in ``(other)`` (a shift in that bucket still shows as drift) and ``unseen`` is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data import values as v
from forgeline.data.profile import category_strings
from forgeline.monitoring.windows import Windows

__all__ = ["CATEGORY_KINDS", "OTHER", "Binned", "Tally", "bin_column", "bucket_labels",
           "merge_binned"]

CATEGORY_KINDS = ("categorical", "boolean")
OTHER = "(other)"
_EXAMPLES = 5
_COMPARE_EDGES = 40  # up to this many edges, compare-and-add beats searchsorted
_UNSEEN_KEPT = 1000  # unseen categories counted one by one (to rank merged parts)


@dataclass(frozen=True)
class Tally:
    """Counts per bucket, one row per window (or one row overall); value sums alike."""

    counts: np.ndarray
    sums: np.ndarray | None = None


@dataclass
class Binned:
    """One current column on the reference bins."""

    name: str
    kind: str  # "numeric" or "categorical" (booleans are categorical here)
    labels: list[str]
    reference: np.ndarray  # reference counts per bucket
    buckets: np.ndarray  # bucket per current row; len(labels): missing or not parseable
    rows: int
    missing: int
    numbers: np.ndarray | None = None
    not_parsed: int = 0
    not_parsed_examples: list[str] = field(default_factory=list)
    out_of_range: int | None = None
    unseen: int | None = None
    unseen_examples: list[str] = field(default_factory=list)
    stats: Mapping[str, Any] = field(default_factory=dict)
    unseen_counts: dict[str, int] = field(default_factory=dict)  # the most frequent unseen

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def ref_means(self) -> np.ndarray | None:
        """Mean of the reference values per bin, when the profile has it (numeric)."""
        means = self.stats.get("bin_means")
        if self.kind != "numeric" or means is None or len(means) != len(self.labels):
            return None
        return np.array([np.nan if m is None else m for m in means], dtype="float64")

    def counts(self, windows: Windows | None = None) -> tuple[Tally, Tally | None]:
        """Counts (and value sums, when the reference has bin means) per bucket: overall,
        and per window (None without windows), in one ``bincount`` each."""
        nb = len(self.labels)
        weights = None
        if self.ref_means is not None:
            weights = self.numbers  # NaN only sits in the missing bucket, which is dropped
            if self.out_of_range:  # infinities would make a bin's sum infinite
                low, high = self.stats.get("min") or 0.0, self.stats.get("max") or 0.0
                weights = np.nan_to_num(weights, nan=0.0, posinf=high, neginf=low)
        if windows is None or not len(windows):
            counts = np.bincount(self.buckets, minlength=nb + 1)[None, :nb]
            sums = None if weights is None else np.bincount(
                self.buckets, weights=weights, minlength=nb + 1)[None, :nb]
            return Tally(counts, sums), None
        flat = windows.base(nb + 1) + self.buckets
        size, shape = (len(windows) + 1) * (nb + 1), (len(windows) + 1, nb + 1)
        counts = np.bincount(flat, minlength=size).reshape(shape)
        sums = None if weights is None else np.bincount(
            flat, weights=weights, minlength=size).reshape(shape)
        overall = Tally(counts.sum(axis=0)[None, :nb],
                        None if sums is None else sums.sum(axis=0)[None, :nb])
        return overall, Tally(counts[:-1, :nb], None if sums is None else sums[:-1, :nb])


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def bucket_labels(stats: Mapping[str, Any]) -> list[str]:
    """Readable names of a profile column's buckets."""
    if "categories" in stats:
        return [*stats["categories"], OTHER]
    inner = [float(e) for e in stats["bins"]["edges"][1:-1]]
    if not inner:
        return ["all"]
    middle = [f"[{_fmt(a)}, {_fmt(b)})" for a, b in pairwise(inner)]
    return [f"< {_fmt(inner[0])}", *middle, f">= {_fmt(inner[-1])}"]


def _as_numbers(series: pd.Series) -> tuple[np.ndarray, int, list[str]]:
    if v.is_number_dtype(series) or pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype="float64", na_value=np.nan), 0, []
    numbers = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan)
    bad = series.notna().to_numpy() & np.isnan(numbers)
    examples = list(dict.fromkeys(str(x) for x in series[bad].iloc[:1000]))[:_EXAMPLES]
    return numbers, int(bad.sum()), examples


def _small(n_buckets: int) -> type[np.integer]:
    return np.int8 if n_buckets < 127 else np.int32


def _numeric(name: str, series: pd.Series, stats: Mapping[str, Any]) -> Binned:
    numbers, not_parsed, examples = _as_numbers(series)
    inner = np.asarray([float(e) for e in stats["bins"]["edges"][1:-1]], dtype="float64")
    nb = len(inner) + 1
    missing_or_bad = np.isnan(numbers)
    if len(inner) <= _COMPARE_EDGES:
        buckets = np.zeros(len(numbers), dtype=_small(nb))
        above = np.empty(len(numbers), dtype=bool)
        for edge in inner:
            np.greater_equal(numbers, edge, out=above)
            buckets += above
    else:
        buckets = np.searchsorted(inner, numbers, side="right").astype(_small(nb))
    buckets[missing_or_bad] = nb
    low, high = stats.get("min"), stats.get("max")
    out = None
    if low is not None and high is not None:
        out = int(np.count_nonzero(numbers < low)) + int(np.count_nonzero(numbers > high))
    return Binned(name, "numeric", bucket_labels(stats),
                  np.asarray(stats["bins"]["counts"], dtype="float64"), buckets, len(series),
                  int(missing_or_bad.sum()) - not_parsed, numbers=numbers,
                  not_parsed=not_parsed, not_parsed_examples=examples, out_of_range=out,
                  stats=stats)


def _categorical(name: str, series: pd.Series, stats: Mapping[str, Any],
                 known: frozenset[str] | None) -> Binned:
    keys = list(stats["categories"])
    where = {k: i for i, k in enumerate(keys)}
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells (lists from Parquet): their text
        codes, uniques = pd.factorize(series.astype(str).where(series.notna()))
    names = category_strings(pd.Series(uniques))  # numbers keep their dtype: 1.0 is "1"
    names_list = [str(x) for x in names]
    nb = len(keys) + 1
    lut = np.array([where.get(x, len(keys)) for x in names_list] + [nb], dtype=_small(nb))
    buckets = lut[codes]  # code -1 (missing) picks the trailing missing bucket
    unseen, examples, unseen_counts = None, [], {}
    if known is not None:
        new = [i for i, x in enumerate(names_list) if x not in known]
        if new:
            per_code = np.bincount(codes[codes >= 0], minlength=len(names_list))
            unseen = int(per_code[new].sum())
            ranked = sorted(new, key=lambda i: -per_code[i])
            examples = [names_list[i] for i in ranked[:_EXAMPLES]]
            kept = set(ranked[:_UNSEEN_KEPT])  # in order of first appearance, as ``new``
            unseen_counts = {names_list[i]: int(per_code[i]) for i in new if i in kept}
        else:
            unseen = 0
    reference = np.asarray([*stats["categories"].values(), stats.get("other_count") or 0],
                           dtype="float64")
    return Binned(name, "categorical", bucket_labels(stats), reference, buckets, len(series),
                  int(np.count_nonzero(codes < 0)), unseen=unseen,
                  unseen_examples=examples, stats=stats, unseen_counts=unseen_counts)


def bin_column(name: str, series: pd.Series, stats: Mapping[str, Any],
               known: frozenset[str] | None = None) -> Binned | None:
    """Bin one current column on its profile stats; None for kinds without bins.

    Args:
        name: the column name.
        series: its current values.
        stats: its profile entry.
        known: every category seen in training, when that set is complete.
    """
    kind = stats.get("kind")
    if kind == "numeric" and stats.get("bins"):
        return _numeric(name, series, stats)
    if kind in CATEGORY_KINDS and "categories" in stats:
        return _categorical(name, series, stats, known)
    return None


def merge_binned(parts: list[Binned]) -> Binned:
    """One column's binning over several parts of the data (partitions, in order), from
    each part's binning without its rows: counts add up exactly; ``buckets`` and
    ``numbers`` stay empty (drift reads the parts' summed :class:`Tally` instead).

    Examples: unseen categories are ranked by their summed counts (exact while each part
    has at most 1000 unseen categories, ties in order of first appearance); values that
    do not parse are the first distinct ones of the parts in order, which may differ from
    those of the data read whole when a part holds more than 1000 such values.
    """
    first = parts[0]
    unseen = None if any(p.unseen is None for p in parts) else sum(
        p.unseen or 0 for p in parts)
    counts: dict[str, int] = {}
    for p in parts:
        for k, n in p.unseen_counts.items():
            counts[k] = counts.get(k, 0) + n
    ranked = sorted(counts, key=lambda k: -counts[k])
    oor = None if any(p.out_of_range is None for p in parts) else sum(
        p.out_of_range or 0 for p in parts)
    bad = list(dict.fromkeys(x for p in parts for x in p.not_parsed_examples))[:_EXAMPLES]
    return Binned(first.name, first.kind, first.labels, first.reference,
                  np.zeros(0, dtype=np.int8), sum(p.rows for p in parts),
                  sum(p.missing for p in parts), None, sum(p.not_parsed for p in parts),
                  bad, oor, unseen, ranked[:_EXAMPLES], first.stats,
                  {k: counts[k] for k in ranked})
