"""Plotly figures of a global explanation (:mod:`forgeline.packaging.attributions`).

The SHAP summary (a beeswarm: one row per input column, ordered by mean |contribution|,
each point a row of the sample at its contribution, coloured by the column's value), the
mean |contribution| bar chart, dependence plots (a column's value against its
contribution) and the interaction heatmap. Figures are plain dicts in plotly's JSON schema
(like :mod:`.monitoring_plots`); the point clouds go as float32 arrays, which plotly writes
as compact binary (base64) arrays.

Personal columns (``hidden``) are shown by name only: grey points, no values in the hover
text, no dependence plot.

Colour scale: numbers are clipped to their 5th-95th percentiles and scaled to 0-1 (blue:
low, red: high), as ``shap``'s summary plot does; categories (and texts) are coloured by
their code in sorted order, booleans false/true as 0/1; missing values are grey.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forgeline.packaging.attributions import GlobalExplanation
from forgeline.reports.theme import BLUE, GREY, HEIGHT, RED, TEMPLATE

__all__ = ["DEPENDENCE_FEATURES", "MAX_FEATURES", "MAX_INTERACTION_FEATURES", "dependence",
           "dependences", "encode", "interactions", "mean_abs_bars", "summary"]

MAX_FEATURES = 20
DEPENDENCE_FEATURES = 4
MAX_INTERACTION_FEATURES = 10
_SCALE = [[0.0, BLUE], [0.5, "#a855f7"], [1.0, RED]]
_BINS = 60  # horizontal bins of the beeswarm; points in one bin spread vertically
_SPREAD = 0.4  # at most this far above and below a row's line


def _figure(title: str, height: int = HEIGHT, **layout: Any) -> dict[str, Any]:
    return {"data": [], "layout": {"template": TEMPLATE, "height": height,
                                   "title": {"text": title, "x": 0.02}, **layout}}


def encode(values: pd.Series) -> tuple[np.ndarray, bool]:
    """The colour (0-1, NaN when missing) of each value, and whether they were numbers."""
    s = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float).to_numpy(), True
    if pd.api.types.is_datetime64_any_dtype(s):
        s = pd.Series(np.where(s.isna(), np.nan, s.astype("int64")), dtype=float)
    if pd.api.types.is_numeric_dtype(s):
        x = s.astype(float).to_numpy()
        finite = x[np.isfinite(x)]
        if len(finite) == 0:
            return np.full(len(x), np.nan), True
        low, high = np.percentile(finite, [5, 95])
        if high <= low:
            low, high = finite.min(), finite.max()
        scaled = (np.clip(x, low, high) - low) / (high - low) if high > low else x * 0 + 0.5
        return np.where(np.isfinite(x), scaled, np.nan), True
    codes = pd.Categorical(s.astype("string")).codes.astype(float)
    top = codes.max() if len(codes) else 0
    return np.where(codes < 0, np.nan, codes / top if top > 0 else 0.5), False


def _swarm(x: np.ndarray) -> np.ndarray:
    """Vertical offsets that spread points of similar x like a beeswarm (deterministic)."""
    if len(x) == 0:
        return x
    low, high = float(np.min(x)), float(np.max(x))
    bins = (np.zeros(len(x), dtype=int) if high <= low
            else np.minimum(((x - low) / (high - low) * _BINS).astype(int), _BINS - 1))
    order = np.lexsort((x, bins))
    rank = np.zeros(len(x), dtype=int)
    start = 0
    for i in range(1, len(order) + 1):
        if i == len(order) or bins[order[i]] != bins[order[start]]:
            k = np.arange(i - start)
            rank[order[start:i]] = k
            start = i
    offsets = ((rank + 1) // 2) * np.where(rank % 2 == 1, 1.0, -1.0)
    widest = max(1.0, float(np.abs(offsets).max()))
    return offsets / widest * _SPREAD


def _top(g: GlobalExplanation, n: int) -> list[str]:
    return list(g.mean_abs)[:n]


def _hover(column: str, values: pd.Series) -> list[str]:
    return [f"{column} = {'missing' if pd.isna(v) else v}" for v in values]


def _personal(column: str, rows: int) -> list[str]:
    return [f"{column} (personal: value not shown)"] * rows


def summary(g: GlobalExplanation, hidden: Collection[str] = ()) -> dict[str, Any] | None:
    """The beeswarm: one row per column (the largest mean |contribution| on top)."""
    shown = _top(g, MAX_FEATURES)
    if not shown:
        return None
    e = g.explanation
    fig = _figure(f"SHAP summary: contribution of each feature per row ({e.units})",
                  height=max(HEIGHT, 90 + 34 * len(shown)), showlegend=False)
    missing_x: list[float] = []
    missing_y: list[float] = []
    missing_text: list[str] = []
    for position, column in enumerate(reversed(shown)):
        j = e.columns.index(column)
        x = np.asarray(e.contributions[:, j], dtype=float)
        colour = (np.full(len(x), np.nan) if column in hidden
                  else encode(e.data[column])[0])
        y = position + _swarm(x)
        known = ~np.isnan(colour)
        fig["data"].append({
            "type": "scatter", "mode": "markers", "name": column,
            "x": x[known].astype(np.float32), "y": y[known].astype(np.float32),
            "text": [t for t, k in zip(_hover(column, e.data[column]), known, strict=True) if k],
            "hovertemplate": "%{text}<br>contribution %{x:.4g}<extra></extra>",
            "marker": {"size": 4, "opacity": 0.7, "color": colour[known].astype(np.float32),
                       "colorscale": _SCALE, "cmin": 0, "cmax": 1,
                       "showscale": position == len(shown) - 1,
                       "colorbar": {"title": {"text": "feature value"}, "tickvals": [0, 1],
                                    "ticktext": ["low", "high"], "thickness": 12}}})
        missing_x += x[~known].tolist()
        missing_y += y[~known].tolist()
        missing_text += (_personal(column, int((~known).sum())) if column in hidden
                         else [f"{column} = missing"] * int((~known).sum()))
    if missing_x:  # missing values, and every value of a personal column
        fig["data"].append({"type": "scatter", "mode": "markers", "name": "no value",
                            "x": missing_x, "y": missing_y, "text": missing_text,
                            "hovertemplate": "%{text}<br>contribution %{x:.4g}<extra></extra>",
                            "marker": {"size": 4, "opacity": 0.7, "color": GREY}})
    fig["layout"]["xaxis"] = {"title": {"text": f"contribution ({e.units})"},
                              "zeroline": True}
    fig["layout"]["yaxis"] = {"tickvals": list(range(len(shown))),
                              "ticktext": list(reversed(shown)), "range": [-0.6,
                                                                           len(shown) - 0.4]}
    return fig


def mean_abs_bars(g: GlobalExplanation) -> dict[str, Any] | None:
    """Mean |contribution| per column, the largest at the top."""
    shown = _top(g, MAX_FEATURES)[::-1]
    if not shown:
        return None
    fig = _figure(f"Mean |contribution| per feature ({g.explanation.units})",
                  height=max(HEIGHT, 80 + 24 * len(shown)))
    fig["data"].append({"type": "bar", "orientation": "h", "marker": {"color": BLUE},
                        "x": [g.mean_abs[c] for c in shown], "y": shown,
                        "hovertemplate": "%{y}: %{x:.4g}<extra></extra>"})
    fig["layout"]["xaxis"] = {"title": {"text": f"mean |contribution| over {g.rows} rows"}}
    fig["layout"]["yaxis"] = {"type": "category"}
    return fig


def _partner(g: GlobalExplanation, column: str, hidden: Collection[str]) -> str | None:
    """The column ``column`` interacts with most (None without interactions)."""
    if g.interactions is None:
        return None
    i = g.interaction_columns.index(column)
    row = g.interactions[i].copy()
    row[i] = -np.inf
    row[[j for j, c in enumerate(g.interaction_columns) if c in hidden]] = -np.inf
    best = int(np.argmax(row))
    return g.interaction_columns[best] if np.isfinite(row[best]) and row[best] > 0 else None


def dependence(g: GlobalExplanation, column: str, hidden: Collection[str] = ()
               ) -> dict[str, Any]:
    """A column's value against its contribution; coloured by the column it interacts with
    most when interactions were measured."""
    e = g.explanation
    values = e.data[column].reset_index(drop=True)
    y = np.asarray(e.contributions[:, e.columns.index(column)], dtype=np.float32)
    partner = _partner(g, column, hidden)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    dates = pd.api.types.is_datetime64_any_dtype(values)
    x: Any = (values.astype(float).to_numpy(np.float32) if numeric
              else [None if pd.isna(v) else v.isoformat() for v in values] if dates
              else values.astype("string").fillna("missing").tolist())
    marker: dict[str, Any] = {"size": 5, "opacity": 0.6, "color": BLUE}
    hover = "%{x}: contribution %{y:.4g}"
    if partner is not None:
        colour, _ = encode(e.data[partner])
        marker.update(color=np.nan_to_num(colour, nan=0.5).astype(np.float32),
                      colorscale=_SCALE, cmin=0, cmax=1, showscale=True,
                      colorbar={"title": {"text": partner}, "tickvals": [0, 1],
                                "ticktext": ["low", "high"], "thickness": 12})
        hover += "<br>%{text}"
    fig = _figure(f"Dependence: {column}", showlegend=False)
    if partner is not None:
        fig["layout"]["title"]["subtitle"] = {"text": f"coloured by {partner}"}
    fig["data"].append({"type": "scatter", "mode": "markers", "x": x, "y": y,
                        "marker": marker, "hovertemplate": hover + "<extra></extra>",
                        **({"text": _hover(partner, e.data[partner])} if partner else {})})
    fig["layout"]["xaxis"] = {"title": {"text": column},
                              "type": "linear" if numeric else "date" if dates else "category"}
    fig["layout"]["yaxis"] = {"title": {"text": f"contribution ({e.units})"}}
    return fig


def dependences(g: GlobalExplanation, n: int = DEPENDENCE_FEATURES,
                hidden: Collection[str] = ()) -> list[dict[str, Any]]:
    """Dependence plots of the ``n`` columns with the largest mean |contribution| (but
    the personal ones)."""
    largest = max(g.mean_abs.values(), default=0.0)
    shown = [c for c in g.mean_abs if c not in hidden][:n]
    return [dependence(g, c, hidden) for c in shown if g.mean_abs[c] > 1e-6 * largest > 0]


def interactions(g: GlobalExplanation) -> dict[str, Any] | None:
    """Mean |interaction| between the columns with the largest mean |contribution|: each
    pair's value is both halves together; the diagonal (main effects) is left blank."""
    if g.interactions is None:
        return None
    shown: Sequence[str] = _top(g, MAX_INTERACTION_FEATURES)
    index = [g.interaction_columns.index(c) for c in shown]
    z = 2 * g.interactions[np.ix_(index, index)]
    grid = [[None if i == j else float(z[i, j]) for j in range(len(shown))]
            for i in range(len(shown))]
    fig = _figure("Interactions: mean |SHAP interaction| between features",
                  height=max(HEIGHT, 120 + 34 * len(shown)))
    fig["data"].append({"type": "heatmap", "z": grid, "x": list(shown), "y": list(shown),
                        "colorscale": [[0.0, "#f8fafc"], [1.0, BLUE]], "zmin": 0,
                        "hoverongaps": False,
                        "hovertemplate": "%{y} x %{x}: %{z:.4g}<extra></extra>",
                        "colorbar": {"title": {"text": g.explanation.units}}})
    fig["layout"]["xaxis"] = {"type": "category"}
    fig["layout"]["yaxis"] = {"type": "category", "autorange": "reversed"}
    return fig
