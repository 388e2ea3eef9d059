"""Split a frame into a training and a test part, the way the data calls for.

Without a strategy: by time when there is a time column, by group when there is a group
column, stratified for classification, random otherwise. Every split is deterministic for
a seed, returns index labels in the frame's own row order, and refuses to leave either side
empty.

- time: the newest ``test_size`` share of rows is the test split. Rows that share the
  boundary timestamp all go to the test side, so the test part may be a little larger than
  asked, and no test row is older than any training row (max(train) < min(test)).
  A row without a time cannot be placed on either side: that is an error.
- group: whole groups go to one side (scikit-learn's GroupShuffleSplit; ``test_size`` is a
  share of groups). A missing group value is a group of its own.
- stratified: class shares are kept on both sides (StratifiedShuffleSplit); a missing
  target is a class of its own (training drops those rows before splitting).
- random: a seeded shuffle.

A random or stratified split of data with a time column lets the model train on the future
and be tested on the past; it is refused (LeakageDetected) unless
``split.allow_random_on_time`` is set.

Copies stay together: given ``copies`` (per row, the group of rows it is a copy of, -1 for
none: :func:`forgeline.data.leakage.copy_groups`), a random or stratified split puts every
group on the side of its first row, and so do the cross-validation folds
(:func:`keep_together`), so a test row is never a copy of a training row and the test score
is not inflated by rows the model has seen. Groups are small and rare, so the shares move
by a handful of rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

from forgeline.data import values as v
from forgeline.entities import SplitStrategy, Task
from forgeline.errors import InvalidInput, LeakageDetected

__all__ = ["choose_strategy", "keep_together", "split_frame"]


def choose_strategy(strategy: SplitStrategy | None, task: Task, time_column: str | None,
                    group_column: str | None) -> SplitStrategy:
    """The strategy used when the spec gives ``strategy`` (None: pick from the data)."""
    if strategy is not None:
        return strategy
    if time_column:
        return SplitStrategy.TIME
    if group_column:
        return SplitStrategy.GROUP
    return SplitStrategy.RANDOM if task is Task.REGRESSION else SplitStrategy.STRATIFIED


def _column(df: pd.DataFrame, name: str, role: str, key: str) -> pd.Series:
    if name not in df.columns:
        shown = ", ".join(repr(str(c)) for c in df.columns[:8])
        raise InvalidInput(f"The {role} column {name!r} is not in the data (columns: {shown}"
                           f"{', ...' if len(df.columns) > 8 else ''}).",
                           hint=f"Fix {key} in the spec (names are case-sensitive).")
    return df[name]


def _time(df: pd.DataFrame, column: str, test_size: float) -> np.ndarray:
    raw = _column(df, column, "time", "data.time_column")
    times = v.time_values(raw)
    missing = times.isna()
    if missing.any():
        unparsed = raw[missing & raw.notna()]
        what = (f" ({len(unparsed)} of them are not dates, e.g. {str(unparsed.iloc[0])!r})"
                if len(unparsed) else "")
        raise InvalidInput(f"The time column {column!r} has {int(missing.sum())} rows without "
                           f"a time{what}: they cannot be placed before or after the split.",
                           hint="Fill or drop those rows, or fix the time format.")
    values = times.to_numpy()
    order = np.sort(values, kind="stable")
    n_test = math.ceil(test_size * len(values))
    boundary = order[len(values) - n_test]
    test = values >= boundary  # every row at the boundary time goes to the test side
    if test.all():
        raise InvalidInput(f"A time split leaves no training rows: the newest "
                           f"{test_size:.0%} of rows starts at the oldest time in "
                           f"{column!r} ({boundary}).",
                           hint="Check the time column, lower split.test_size, or use "
                                "another split strategy.")
    return test


def _group(df: pd.DataFrame, column: str, test_size: float, seed: int) -> np.ndarray:
    codes, uniques = pd.factorize(_column(df, column, "group", "data.group_column"),
                                  use_na_sentinel=False)
    if len(uniques) < 2:
        raise InvalidInput(f"A group split needs at least 2 groups; {column!r} has "
                           f"{len(uniques)}.",
                           hint="Check data.group_column, or use another split strategy.")
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    try:
        _, test_rows = next(splitter.split(np.zeros(len(codes)), groups=codes))
    except ValueError as e:
        raise InvalidInput(f"Cannot split {len(uniques)} groups of {column!r} with "
                           f"test_size {test_size}: {e}",
                           hint="Change split.test_size or use another strategy.") from None
    test = np.zeros(len(codes), dtype=bool)
    test[test_rows] = True
    return test


def _stratified(df: pd.DataFrame, target: str, task: Task, test_size: float, seed: int
                ) -> np.ndarray:
    if task is Task.REGRESSION:
        raise InvalidInput("A stratified split needs classes, but the task is regression.",
                           hint="Use split.strategy: random (or leave it out).")
    y = _column(df, target, "target", "data.target")
    codes, classes = pd.factorize(y, use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(classes))
    rare = [f"{classes[i]!r} ({counts[i]} row)" for i in np.flatnonzero(counts < 2)]
    if rare:
        raise InvalidInput(f"A stratified split needs at least 2 rows of each class; "
                           f"{target!r} has {', '.join(rare[:5])}.",
                           hint="Remove or merge the rare classes, or use split.strategy: "
                                "random.")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    try:
        _, test_rows = next(splitter.split(np.zeros(len(codes)), codes))
    except ValueError as e:
        raise InvalidInput(f"Cannot stratify {len(classes)} classes over {len(codes)} rows "
                           f"with test_size {test_size}: {e}",
                           hint="Use more rows, a larger split.test_size, or split.strategy: "
                                "random.") from None
    test = np.zeros(len(codes), dtype=bool)
    test[test_rows] = True
    return test


def _random(n: int, test_size: float, seed: int) -> np.ndarray:
    test = np.zeros(n, dtype=bool)
    test[np.random.default_rng(seed).permutation(n)[:math.ceil(test_size * n)]] = True
    return test


def keep_together(labels: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """``labels`` (a side or a fold per row) with each group's rows moved to the label of
    its first row; rows outside a group (-1) keep theirs."""
    if groups is None or not (groups >= 0).any():
        return labels
    members = np.flatnonzero(groups >= 0)
    first = pd.Series(members).groupby(groups[members]).transform("first").to_numpy()
    out = labels.copy()
    out[members] = labels[first]
    return out


def split_frame(df: pd.DataFrame, strategy: SplitStrategy | None, test_size: float, seed: int,
                *, target: str, task: Task, time_column: str | None,
                group_column: str | None, allow_random_on_time: bool = False,
                copies: np.ndarray | None = None) -> tuple[pd.Index, pd.Index]:
    """Split ``df`` into (train index, test index), by the rules in the module docstring.

    ``copies``: per row of ``df``, its group of copies (-1: none); a random or stratified
    split keeps each group on one side.

    Raises:
        LeakageDetected: a random or stratified split with a time column, not allowed.
        InvalidInput: test_size outside (0, 1), an unknown time/group/target column, a
            strategy that lacks its column, a duplicated index, too few rows, groups or
            class members, missing times, or a split that leaves a side empty.
    """
    if not 0.0 < test_size < 1.0:
        raise InvalidInput(f"split.test_size must be between 0 and 1, not {test_size}.",
                           hint="For example 0.2 keeps a fifth of the rows for the test.")
    if not df.index.is_unique:
        raise InvalidInput("The frame's index has duplicate labels, so the split cannot name "
                           "its rows.", hint="Call df.reset_index(drop=True) first.")
    chosen = choose_strategy(strategy, task, time_column, group_column)
    if time_column and chosen in (SplitStrategy.RANDOM, SplitStrategy.STRATIFIED):
        _column(df, time_column, "time", "data.time_column")
        if not allow_random_on_time:
            raise LeakageDetected(
                f"A {chosen.value} split of time-ordered data (data.time_column: "
                f"{time_column}) lets the model see the future: it trains on rows newer than "
                "the ones it is tested on, and the test score overstates what it will do in "
                "production.",
                hint="Use split.strategy: time, or set split.allow_random_on_time: true if "
                     "the rows really are independent of time.")
    if chosen is SplitStrategy.TIME and not time_column:
        raise InvalidInput("split.strategy is time, but no time column is set.",
                           hint="Set data.time_column to the column with each row's time.")
    if chosen is SplitStrategy.GROUP and not group_column:
        raise InvalidInput("split.strategy is group, but no group column is set.",
                           hint="Set data.group_column (a customer or patient id, say).")
    n = len(df)
    if n < 2:
        raise InvalidInput(f"Cannot split {n} row(s) into a training and a test part.",
                           hint="Training needs more data.")
    if chosen is SplitStrategy.TIME:
        test = _time(df, time_column or "", test_size)
    elif chosen is SplitStrategy.GROUP:
        test = _group(df, group_column or "", test_size, seed)
    elif chosen is SplitStrategy.STRATIFIED:
        test = _stratified(df, target, task, test_size, seed)
    else:
        test = _random(n, test_size, seed)
    if chosen in (SplitStrategy.RANDOM, SplitStrategy.STRATIFIED):
        test = keep_together(test, copies)
    if not test.any() or test.all():
        side = "test" if not test.any() else "training"
        raise InvalidInput(f"The {chosen.value} split leaves the {side} part empty "
                           f"({n} rows, test_size {test_size}).",
                           hint="Use more rows or change split.test_size.")
    return df.index[~test], df.index[test]
