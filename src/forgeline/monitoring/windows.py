"""Time windows of the current data, for the over-time views (drift, error, metrics).

Rows are put into windows by a clock (:func:`choose_clock`): the data's own event time
when the model's training data named one (``data.time_column``, recorded in the profile's
``time`` section) and the current data has it; else the time each prediction was logged
(the prediction log's ``ts``); else their order. Event time comes first because traffic
can be logged long after it happened (a backfill, a replay, the demo's month of
transactions sent in seconds): by logging time every window would fall on one instant.
In a prediction log the event-time column is looked up under the name the log stores it
by (``input_ts`` beside its own ``ts``), so the log's ``ts`` is never taken for it.

``auto`` picks days when the data spans 2 to ``max_windows`` days, else 10 windows of
equal rows; a pandas frequency (``1D``, ``6h``) cuts by the clock (widened to
``max_windows`` equal spans when it would give more); a number cuts every N rows. Rows
without a time stay outside every window (id -1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forgeline.data import values as v
from forgeline.errors import InvalidSpec
from forgeline.monitoring.config import MonitorConfig
from forgeline.store.predictions import stored_name

__all__ = ["LOG_TIME", "ROW_ORDER", "Clock", "Windows", "choose_clock", "split_windows"]

_AUTO_WINDOWS = 10
LOG_TIME = "ts"  # the prediction log's own column: when each prediction was logged
_NAMES = {"event": "event time", "logging": "logging time"}


@dataclass(frozen=True)
class Clock:
    """Which times cut the windows.

    Attributes:
        kind: ``event`` (the data's own time column), ``logging`` (the prediction log's
            ``ts``) or ``rows`` (no usable times: row order).
        column: the time column as the model's data names it (None for row order).
        source: the column read in the current data (``input_ts`` where the prediction
            log stores an input-side ``ts`` beside its own).
        label: in words, as the result, the report and the CLI say it:
            ``event time: ts``, ``logging time: ts`` or ``row order``.
    """

    kind: str
    column: str | None = None
    source: str | None = None
    label: str = "row order"


ROW_ORDER = Clock("rows")


def _clock(kind: str, column: str, source: str) -> Clock:
    return Clock(kind, column, source, f"{_NAMES[kind]}: {column}")


def choose_clock(frame: pd.DataFrame, config: MonitorConfig, event_column: str | None = None,
                 *, log: bool = False) -> Clock:
    """The clock of ``frame``'s windows (see the module docstring).

    Args:
        frame: the current data.
        config: its ``time_column``, when given, is the clock (event time unless it is a
            log's ``ts``); row order when that column holds no times.
        event_column: the model's event-time column (the profile's ``time`` section).
        log: ``frame`` is a prediction log (its ``ts`` is logging time).
    """
    stored = None if event_column is None else stored_name(event_column)
    name = config.time_column
    if name is not None:
        if not _has_times(frame, name):
            return ROW_ORDER
        if event_column is not None and name in (stored, event_column) and not (
                log and name == LOG_TIME):
            return _clock("event", event_column, name)
        logging = name == LOG_TIME and (log or event_column != LOG_TIME)
        return _clock("logging" if logging else "event", name, name)
    if event_column is not None:
        for source in dict.fromkeys([stored, *(() if log else (event_column,))]):
            if source is not None and _has_times(frame, source):
                return _clock("event", event_column, source)
    if _has_times(frame, LOG_TIME):
        return _clock("logging", LOG_TIME, LOG_TIME)
    return ROW_ORDER


@dataclass
class Windows:
    """Window id per row (-1: none) and a label, start and end per window."""

    ids: np.ndarray
    labels: list[str]
    starts: list[str | None]
    ends: list[str | None]
    by: str

    def __len__(self) -> int:
        return len(self.labels)

    def every(self, step: int) -> Windows:
        """The same windows over every ``step``-th row."""
        return Windows(self.ids[::step], self.labels, self.starts, self.ends, self.by)

    def base(self, width: int) -> np.ndarray:
        """``slot * width`` per row, where a row's slot is its window id, or one extra last
        slot for rows outside every window: add a bucket index below ``width`` to count
        buckets per window with one ``bincount``. Cached per width."""
        cache = self.__dict__.setdefault("_bases", {})
        if width not in cache:
            slots = np.where(self.ids < 0, len(self), self.ids)
            cache[width] = slots * width
        return cache[width]

    def counts(self) -> np.ndarray:
        """Rows per window."""
        inside = self.ids >= 0
        return np.bincount(self.ids[inside], minlength=len(self))

    def means(self, values: np.ndarray) -> np.ndarray:
        """Mean of ``values`` per window (NaN values skipped; NaN for an empty window)."""
        ok = (self.ids >= 0) & ~np.isnan(values)
        total = np.bincount(self.ids[ok], weights=values[ok], minlength=len(self))
        count = np.bincount(self.ids[ok], minlength=len(self))
        return np.divide(total, count, out=np.full(len(self), np.nan), where=count > 0)


def _none(n: int) -> Windows:
    return Windows(np.zeros(0, dtype=np.int64) if n == 0 else np.full(n, -1), [], [], [],
                   "none")


def _by_order(order: np.ndarray, size: int, n: int, times: pd.Series | None, by: str
              ) -> Windows:
    """Consecutive runs of ``size`` rows in ``order`` (positions into the frame)."""
    ids = np.full(n, -1, dtype=np.int64)
    ids[order] = np.arange(len(order)) // size
    count = int(ids.max()) + 1 if len(order) else 0
    labels, starts, ends = [], [], []
    firsts: list[Any] = []
    for w in range(count):
        part = order[w * size:(w + 1) * size]
        if times is not None:
            first, last = times.iloc[part[0]], times.iloc[part[-1]]
            starts.append(str(first))
            ends.append(str(last))
            firsts.append(first)
        else:
            starts.append(None)
            ends.append(None)
            labels.append(f"rows {part[0] + 1}-{part[-1] + 1}")
    if times is not None:
        labels = _time_labels(firsts)
    return Windows(ids, labels, starts, ends, by)


def _time_labels(firsts: list[Any]) -> list[str]:
    """Each window's first time, to the minute, or to the second (then with fractions)
    where minutes would name two windows alike: the over-time charts use the labels as
    categories, and windows of a burst of traffic would otherwise collapse into one."""
    if not all(hasattr(t, "strftime") for t in firsts):
        return [str(t) for t in firsts]
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        labels = [format(t, fmt) for t in firsts]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{label} #{i + 1}" for i, label in enumerate(labels)]


def _by_clock(times: pd.Series, freq: str, max_windows: int) -> Windows:
    try:
        floored = times.dt.floor(freq)
    except (ValueError, TypeError) as e:
        raise InvalidSpec(f"Invalid window frequency {freq!r}: {e}.",
                          hint="Use a pandas frequency such as 1D, 6h or 15min.") from None
    present = floored.notna().to_numpy()
    if floored[present].nunique() > max_windows:
        low, high = times.min(), times.max()
        edges = pd.date_range(low, high, periods=max_windows + 1)
        ids = np.searchsorted(edges.to_numpy()[1:-1], times.to_numpy(), side="right")
        starts_ts, ends_ts = list(edges[:-1]), list(edges[1:])
        by = f"{max_windows} equal spans"
    else:
        uniques = np.sort(floored[present].unique())
        ids = np.searchsorted(uniques, floored.to_numpy())
        starts_ts = list(pd.DatetimeIndex(uniques))
        ends_ts = [s + pd.tseries.frequencies.to_offset(freq) for s in starts_ts]
        by = freq
    ids = np.where(present, ids, -1).astype(np.int64)
    day = all(s == s.normalize() for s in starts_ts) and by == freq
    labels = [f"{s:%Y-%m-%d}" if day else f"{s:%Y-%m-%d %H:%M}" for s in starts_ts]
    return Windows(ids, labels, [str(s) for s in starts_ts], [str(e) for e in ends_ts], by)


def _times(frame: pd.DataFrame, column: str) -> pd.Series | None:
    if column not in frame.columns:
        return None
    times = v.time_values(frame[column])
    if not pd.api.types.is_datetime64_any_dtype(times.dtype) or times.notna().sum() == 0:
        return None
    return times.reset_index(drop=True)


def _has_times(frame: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` holds times; a datetime column is not converted to tell."""
    if column in frame.columns and pd.api.types.is_datetime64_any_dtype(frame[column].dtype):
        return bool(frame[column].notna().any())
    return _times(frame, column) is not None


def split_windows(frame: pd.DataFrame, config: MonitorConfig, clock: Clock | None = None
                  ) -> Windows:
    """The windows of ``frame`` as ``config.window`` asks, on ``clock`` (by default
    :func:`choose_clock` without an event-time column); see the module docstring."""
    n, window = len(frame), config.window
    if window is None or n == 0:
        return _none(n)
    clock = clock or choose_clock(frame, config)
    times = None if clock.source is None else _times(frame, clock.source)
    if times is not None:
        present = np.flatnonzero(times.notna().to_numpy())
        order = present[np.argsort(times.to_numpy()[present], kind="stable")]
    else:
        order = np.arange(n)
    if isinstance(window, int):
        return _by_order(order, window, n, times, f"{window} rows")
    if window == "auto":
        if times is not None:
            days = (times.max() - times.min()) / pd.Timedelta(days=1)
            if 2 <= days <= config.max_windows:
                return _by_clock(times, "1D", config.max_windows)
        if len(order) < 2 * config.min_window_rows:
            return _none(n)
        size = -(-len(order) // _AUTO_WINDOWS)
        return _by_order(order, size, n, times, f"{_AUTO_WINDOWS} equal windows")
    if times is None:
        wanted = (repr(config.time_column) if config.time_column is not None
                  else f"event-time or {LOG_TIME!r}")
        raise InvalidSpec(f"Window {window!r} needs a time column, and the data has no "
                          f"{wanted} column with times.",
                          hint="Use a number of rows per window, or 'auto'.")
    return _by_clock(times, window, config.max_windows)
