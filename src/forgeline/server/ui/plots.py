"""The geometry of the compare page's server-drawn plots (inline SVG): parallel coordinates
of runs over params and a metric, and a scatter of a param against a metric.

A value axis is numeric (linear, between the smallest and largest value) when every value
on it reads as a finite number, else categorical (the values in order, evenly spaced). A
run without a value on an axis sits on the axis' "missing" mark below it, so each run is
one unbroken line. Lines and points are coloured by the metric (viridis, low to high).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from forgeline.server.ui.render import fmt_number

__all__ = ["Axis", "Mark", "ParallelPlot", "Row", "Scale", "ScatterPlot", "color_of",
           "parallel_coordinates", "scatter"]

Value = str | float | None
MISSING = "—"
# viridis at 0, .25, .5, .75, 1
_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
GREY = "#9ca3af"


def _absent(value: Value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _number(value: Value) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


class Scale:
    """Values onto [0, 1] (0 = the low end); ``None`` for a missing value."""

    def __init__(self, values: Sequence[Value]) -> None:
        present = [v for v in values if not _absent(v)]
        numbers = [_number(v) for v in present]
        self.numeric = bool(present) and all(x is not None for x in numbers)
        self.categories: list[str] = []
        if self.numeric:
            found = [x for x in numbers if x is not None]
            self.lo, self.hi = min(found), max(found)
        else:
            self.lo, self.hi = 0.0, 0.0
            self.categories = sorted({str(v) for v in present})

    def __call__(self, value: Value) -> float | None:
        if _absent(value):
            return None
        if self.numeric:
            x = _number(value)
            if x is None:
                return None
            return 0.5 if self.hi == self.lo else (x - self.lo) / (self.hi - self.lo)
        if len(self.categories) == 1:
            return 0.5
        return self.categories.index(str(value)) / (len(self.categories) - 1)

    def ticks(self, most: int = 12) -> list[tuple[float, str]]:
        """(position, label) of the marks on the axis."""
        if self.numeric:
            if self.hi == self.lo:
                return [(0.5, fmt_number(self.lo))]
            return [(i / 4, fmt_number(self.lo + (self.hi - self.lo) * i / 4)) for i in range(5)]
        step = max(1, math.ceil(len(self.categories) / most))
        return [(self(c) or 0.0, c if len(c) <= 16 else c[:15] + "…")
                for c in self.categories[::step]]


def color_of(t: float | None) -> str:
    """The viridis colour at ``t`` in [0, 1]; grey for a run without the metric."""
    if t is None:
        return GREY
    t = min(1.0, max(0.0, t)) * (len(_VIRIDIS) - 1)
    i = min(int(t), len(_VIRIDIS) - 2)
    f = t - i
    a, b = _VIRIDIS[i], _VIRIDIS[i + 1]
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class Axis:
    label: str
    kind: str  # param or metric
    x: float
    ticks: list[tuple[float, str]]  # (y, label)
    missing: bool = False  # some run has no value on it (its line dips to the mark below)


@dataclass(frozen=True, slots=True)
class Mark:
    """One run: a polyline (``points``) or a point (``x``, ``y``), with its hover text."""

    run_id: str
    label: str
    color: str
    title: str
    points: str = ""
    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True, slots=True)
class ParallelPlot:
    width: int
    height: int
    top: float
    bottom: float
    missing_y: float
    axes: list[Axis]
    lines: list[Mark]
    metric: str
    low: str
    high: str


@dataclass(frozen=True, slots=True)
class ScatterPlot:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    points: list[Mark]
    x_label: str
    y_label: str


@dataclass(frozen=True, slots=True)
class Row:
    """A run as the plots see it: its label and the values of the chosen keys."""

    run_id: str
    label: str
    params: dict[str, str]
    metrics: dict[str, float]


def _metric_scale(rows: Sequence[Row], metric: str) -> Scale:
    return Scale([r.metrics.get(metric) for r in rows])


def parallel_coordinates(rows: Sequence[Row], params: Sequence[str], metric: str | None
                         ) -> ParallelPlot:
    """One axis per param (in order) and one for ``metric``; one line per run."""
    keys: list[tuple[str, str]] = [(p, "param") for p in params]
    if metric:
        keys.append((metric, "metric"))
    width = max(760, 130 * len(keys) + 80)
    height, top, bottom = 380, 34.0, 320.0
    missing_y = bottom + 26
    gap = (width - 140) / max(1, len(keys) - 1)
    scales = []
    for key, kind in keys:
        scales.append(Scale([r.params.get(key) for r in rows]) if kind == "param"
                      else _metric_scale(rows, key))

    def y(t: float | None) -> float:
        return missing_y if t is None else bottom - t * (bottom - top)

    xs = [70 + i * gap if len(keys) > 1 else width / 2 for i in range(len(keys))]
    axes = [Axis(key, kind, x, [(y(t), text) for t, text in s.ticks()],
                 any(s(r.params.get(key) if kind == "param" else r.metrics.get(key)) is None
                     for r in rows))
            for (key, kind), x, s in zip(keys, xs, scales, strict=True)]
    colour = _metric_scale(rows, metric) if metric else None
    lines = []
    for r in rows:
        values: list[Value] = [r.params.get(k) if kind == "param" else r.metrics.get(k)
                               for k, kind in keys]
        points = " ".join(f"{x:.1f},{y(s(v)):.1f}" for x, s, v in
                          zip(xs, scales, values, strict=True))
        shown = ", ".join(f"{k}={MISSING if v is None else fmt_number(v)}"
                          for (k, _), v in zip(keys, values, strict=True))
        t = colour(r.metrics.get(metric)) if colour is not None and metric else None
        lines.append(Mark(r.run_id, r.label, color_of(t), f"{r.label}: {shown}", points))
    low = fmt_number(colour.lo) if colour is not None and colour.numeric else ""
    high = fmt_number(colour.hi) if colour is not None and colour.numeric else ""
    return ParallelPlot(width, height, top, bottom, missing_y, axes, lines, metric or "",
                        low, high)


def scatter(rows: Sequence[Row], param: str, metric: str) -> ScatterPlot:
    """``param`` across, ``metric`` up; one point per run that has both."""
    width, height = 560, 340
    left, right, top, bottom = 88.0, width - 20.0, 16.0, height - 46.0
    xs = Scale([r.params.get(param) for r in rows])
    ys = _metric_scale(rows, metric)
    points = []
    for r in rows:
        tx, ty = xs(r.params.get(param)), ys(r.metrics.get(metric))
        if tx is None or ty is None:
            continue
        px = left + 10 + tx * (right - left - 20)
        py = bottom - 8 - ty * (bottom - top - 16)
        title = f"{r.label}: {param}={r.params.get(param)}, {metric}=" \
                f"{fmt_number(r.metrics.get(metric))}"
        points.append(Mark(r.run_id, r.label, color_of(ty), title, x=px, y=py))
    x_ticks = [(left + 10 + t * (right - left - 20), text) for t, text in xs.ticks(8)]
    y_ticks = [(bottom - 8 - t * (bottom - top - 16), text) for t, text in ys.ticks()]
    return ScatterPlot(width, height, left, right, top, bottom, x_ticks, y_ticks, points,
                       param, metric)
