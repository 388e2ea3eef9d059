"""Downsampling a series of points for a chart, keeping what the eye looks for.

:func:`downsample` picks at most ``max_points`` of a series ordered by x: tsdownsample's
MinMaxLTTB (the extremes of many small buckets, then Largest-Triangle-Three-Buckets over
them; Van Der Donckt et al., 2023) over the finite values, plus the first and the last
point, the lowest and the highest value, and the first NaN, +inf and -inf when the series
has them (LTTB's triangle areas have no meaning for those). numpy and tsdownsample are
imported when first used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["downsample"]


def _landmarks(values: Any) -> set[int]:
    """The first and last point, the extremes, and the first NaN and infinities."""
    import numpy as np

    finite = np.isfinite(values)
    marks = {0, len(values) - 1}
    if finite.any():
        at = np.flatnonzero(finite)
        marks |= {int(at[np.argmin(values[at])]), int(at[np.argmax(values[at])])}
    for odd in (np.isnan(values), values == np.inf, values == -np.inf):
        if odd.any():
            marks.add(int(np.argmax(odd)))
    return marks


def _minmax_lttb(x: Any, y: Any, n_out: int) -> Any:
    """Indices of ``n_out`` points of (x, y) by MinMaxLTTB (all of them if that is fewer)."""
    import numpy as np

    if len(y) <= n_out:
        return np.arange(len(y))
    if n_out < 3:  # LTTB keeps the first and last point at least
        return np.linspace(0, len(y) - 1, n_out).astype(np.int64) if n_out else np.arange(0)
    from tsdownsample import MinMaxLTTBDownsampler

    return MinMaxLTTBDownsampler().downsample(x, y, n_out=n_out)


def downsample(x: Sequence[int] | Any, y: Sequence[float] | Any, max_points: int) -> list[int]:
    """The indices, ascending, of at most ``max_points`` points of a series to draw.

    Args:
        x: the positions (steps), in ascending order; repeated positions are allowed.
        y: the values, the same length; NaN and infinities are allowed.
        max_points: how many points at most (at least 4: the first, last, lowest and
            highest point are always kept).

    Returns:
        Every index when the series has at most ``max_points`` points.
    """
    import numpy as np

    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    if len(y) <= max_points:
        return list(range(len(y)))
    xs = np.ascontiguousarray(x, dtype=np.int64)
    ys = np.ascontiguousarray(y, dtype=np.float64)
    marks = _landmarks(ys)
    finite = np.flatnonzero(np.isfinite(ys))
    chosen = finite[_minmax_lttb(xs[finite], ys[finite], max_points - len(marks))]
    return sorted(marks.union(chosen.tolist()))
