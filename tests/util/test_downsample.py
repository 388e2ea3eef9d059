"""The chart downsampling helper: bounded, and it keeps the points the eye looks for."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forgeline.util.downsample import downsample


def test_a_short_series_is_kept_whole() -> None:
    assert downsample([0, 1, 2], [1.0, math.nan, 3.0], 4) == [0, 1, 2]
    assert downsample([], [], 4) == []


def test_a_long_series_keeps_its_ends_and_extremes() -> None:
    x = np.arange(100_000)
    y = np.sin(x / 700.0)
    y[123], y[77_777] = -5.0, 5.0
    kept = downsample(x, y, 500)
    assert 400 <= len(kept) <= 500 and kept == sorted(set(kept))
    assert {0, 99_999, 123, 77_777} <= set(kept)


def test_nan_and_infinities_are_marked_and_skipped_by_lttb() -> None:
    x = np.repeat(np.arange(5_000), 2)  # two points per step
    y = np.cos(x / 50.0)
    y[1000:1200], y[3001], y[4002] = np.nan, np.inf, -np.inf
    kept = downsample(x, y, 100)
    assert len(kept) <= 100
    assert {0, len(y) - 1, 1000, 3001, 4002} <= set(kept)
    finite = [i for i in kept if np.isfinite(y[i])]
    assert y[finite].min() == y[np.isfinite(y)].min()
    assert y[finite].max() == y[np.isfinite(y)].max()


def test_all_nan_and_tiny_budgets() -> None:
    assert downsample(range(10), [math.nan] * 10, 4) == [0, 9]
    kept = downsample(range(10), [float(i % 3) for i in range(10)], 4)
    assert len(kept) <= 4 and {0, 9} <= set(kept)
    with pytest.raises(ValueError, match="at least 4"):
        downsample(range(10), range(10), 3)
