"""Plotly figures of a labelling run's JSON form (``labels.json``), in the reports' theme.

Each function reads a part of that form (the label model, the sources, the agreement
matrix, the threshold grid, the LLM's kappa), never the labelling objects themselves: the
reports stage does not import the labelling stage. Figures are plain dicts (:mod:`._figs`);
each function returns None when there is nothing to draw.

Names and classes are the user's: they reach plotly escaped and distinct
(:func:`._figs.axis_labels`), so they show as typed. Per-source
figures are horizontal bars whose height grows with the number of sources, so 20 or more
stay readable.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from forgeline.reports._figs import Fig, axis_labels, axis_title, short
from forgeline.reports.theme import BLUE, GREEN, GREY, HEIGHT, ORANGE, RED

Figure = dict[str, Any]

__all__ = ["KAPPA_BANDS", "accuracy_bars", "agreement", "by_threshold", "class_counts",
           "kappa", "kappa_band", "source_accuracy", "source_rates", "tradeoff"]

# Landis & Koch (1977): the usual words for a Cohen's kappa, by the band's upper end.
KAPPA_BANDS = [(0.0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"),
               (0.8, "substantial"), (1.0, "almost perfect")]
_BAND_COLOURS = ["#fecaca", "#fed7aa", "#fef08a", "#d9f99d", "#bbf7d0", "#86efac"]
_AGREE = [[0.0, "#fee2e2"], [0.5, "#fef9c3"], [1.0, "#1d4ed8"]]  # low agreement stands out
MAX_CELL_TEXT = 12  # agreement cells carry their value as text up to this many sources
_PER_SOURCE = 24  # pixels per source in the horizontal bar charts
_LEGEND_TOP = {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"}


def _label(value: Any) -> str:
    """A user's name as plotly shows it: cut short, and tags escaped."""
    return html.escape(short(str(value)), quote=False)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def kappa_band(value: float) -> str:
    """Landis & Koch's word for a Cohen's kappa (``poor`` below 0, ``slight`` to 0.2, ...)."""
    for upper, word in KAPPA_BANDS:
        if value <= upper:
            return word
    return KAPPA_BANDS[-1][1]


def _majority(lm: Mapping[str, Any]) -> bool:
    """Whether the shipped label model is majority vote (then drawn once, not twice)."""
    return lm.get("name") == "majority"


def _span(values: Sequence[float], least: float = 0.05) -> list[float] | None:
    """An axis range at least ``least`` wide around ``values`` (within 0 to 1), so that a
    few tenths of a point do not fill the plot; None (plotly's own) when they span more."""
    if not values or max(values) - min(values) >= least:
        return None
    mid = (max(values) + min(values)) / 2
    lo = min(max(mid - least / 2, 0.0), 1.0 - least)
    return [lo, lo + least]


def _height(n: int) -> int:
    return max(240, 110 + _PER_SOURCE * n)


def accuracy_bars(lm: Mapping[str, Any], sources: Sequence[Mapping[str, Any]] = ()
                  ) -> Figure | None:
    """Accuracy on the gold rows: the shipped label model, majority vote and the best
    single source (with the gold votes it rests on, found in ``sources``)."""
    best = lm.get("best_source") or {}
    votes = next((s.get("gold_votes") for s in sources if s.get("name") == best.get("name")),
                 None)
    bars = [(f"label model ({lm['name']})", lm.get("accuracy"), BLUE, ""),
            ("majority vote", None if _majority(lm) else lm.get("majority_accuracy"), GREY, ""),
            (f"best source: {_label(best.get('name', ''))}", best.get("accuracy"), ORANGE,
             "" if votes is None else f" of {votes:,} vote" + ("" if votes == 1 else "s"))]
    bars = [b for b in bars if b[1] is not None]
    if not bars:
        return None
    fig = Fig("Accuracy on the gold rows", height=260, margin={"l": 20, "t": 20},
              showlegend=False)
    fig.add("bar", orientation="h", y=[b[0] for b in bars], x=[b[1] for b in bars],
            marker={"color": [b[2] for b in bars]},
            text=[_pct(b[1]) + b[3] for b in bars], textposition="auto",
            hovertemplate="%{y}: %{x:.1%}<extra></extra>")
    fig.axes({"range": [0, 1], "tickformat": ".0%", "title": axis_title("accuracy")},
             {"type": "category", "autorange": "reversed"})
    return fig


def source_rates(sources: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Coverage, overlap and conflict of each source, side by side on one shared axis of
    sources (the most covering on top)."""
    if not sources:
        return None
    ranked = sorted(sources, key=lambda s: -(s.get("coverage") or 0.0))
    names = axis_labels([s["name"] for s in ranked])
    fig = Fig("Coverage, overlap and conflict per source", height=_height(len(ranked)),
              subtitle="share of all rows", showlegend=False)
    parts = [("coverage", BLUE, "a label from this source"),
             ("overlap", GREEN, "another source votes too"),
             ("conflict", RED, "another source votes otherwise")]
    for i, (key, colour, means) in enumerate(parts):
        axis = "" if i == 0 else str(i + 1)
        values = [s.get(key) or 0.0 for s in ranked]
        fig.add("bar", orientation="h", y=names, x=values, xaxis=f"x{axis}", yaxis="y",
                marker={"color": colour}, name=key,
                hovertemplate=f"%{{y}}<br>{key}: %{{x:.1%}} of rows ({means})<extra></extra>")
        # each panel its own scale (conflicts are small), its last tick inside the panel
        lo = i * 0.37
        fig["layout"][f"xaxis{axis}"] = {
            "domain": [lo, lo + 0.26], "tickformat": ".0%", "nticks": 3,
            "range": [0, max(max(values) * 1.15, 0.1)], "title": axis_title(key)}
    fig.axes(y={"type": "category", "autorange": "reversed"})
    return fig


def source_accuracy(sources: Sequence[Mapping[str, Any]], lm: Mapping[str, Any]
                    ) -> Figure | None:
    """Accuracy of each source on the gold rows it voted on, with the label model's and
    majority vote's accuracy as lines."""
    judged = sorted((s for s in sources if s.get("accuracy") is not None),
                    key=lambda s: -s["accuracy"])
    if not judged:
        return None
    fig = Fig("Accuracy on gold per source", height=_height(len(judged)),
              subtitle="on the gold rows each source voted on", legend=_LEGEND_TOP,
              margin={"t": 56})
    fig.add("bar", orientation="h", y=axis_labels([s["name"] for s in judged]),
            x=[s["accuracy"] for s in judged], name="source", marker={"color": ORANGE},
            customdata=[s.get("gold_votes") or 0 for s in judged],
            text=[f"{s['accuracy']:.0%} of {s.get('gold_votes') or 0:,}" for s in judged],
            textposition="inside", insidetextanchor="end",
            hovertemplate="%{y}: %{x:.1%} on %{customdata} gold votes<extra></extra>")
    shapes = []
    lines = [(f"label model ({lm['name']})", lm.get("accuracy"), BLUE)]
    if not _majority(lm):
        lines.append(("majority vote", lm.get("majority_accuracy"), GREY))
    for name, value, colour in lines:
        if value is not None:
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": value,
                           "x1": value, "y0": 0, "y1": 1, "showlegend": True,
                           "name": f"{name}: {value:.1%}",
                           "line": {"color": colour, "width": 2, "dash": "dash"}})
    fig["layout"]["shapes"] = shapes
    fig.axes({"range": [0, 1.02], "tickformat": ".0%", "title": axis_title("accuracy")},
             {"type": "category", "autorange": "reversed"})
    return fig


def agreement(a: Mapping[str, Any] | None) -> Figure | None:
    """Pairwise agreement between sources on the rows both vote on (blank: never both)."""
    names = list((a or {}).get("sources") or ())
    matrix = (a or {}).get("matrix") or []
    if len(names) < 2 or len(matrix) != len(names):
        return None
    labels = axis_labels(names)
    n = len(names)
    fig = Fig("Pairwise agreement between sources", height=max(HEIGHT, 120 + 26 * n),
              subtitle="share of the rows both vote on where they agree")
    trace: dict[str, Any] = {
        "z": matrix, "x": labels, "y": labels, "zmin": 0, "zmax": 1, "colorscale": _AGREE,
        "xgap": 1, "ygap": 1, "colorbar": {"title": {"text": "agree"}, "tickformat": ".0%"},
        "hovertemplate": "%{y} and %{x}<br>agree on %{z:.1%}<extra></extra>"}
    if n <= MAX_CELL_TEXT:
        trace["texttemplate"] = "%{z:.0%}"
    fig.add("heatmap", **trace)
    fig.axes({"type": "category", "tickangle": -45 if n > 4 else 0},
             {"type": "category", "autorange": "reversed"})
    return fig


def _chosen(points: Sequence[Mapping[str, Any]], threshold: float
            ) -> Mapping[str, Any] | None:
    return next((p for p in points if abs(p["threshold"] - threshold) < 1e-9), None)


def tradeoff(points: Sequence[Mapping[str, Any]], threshold: float) -> Figure | None:
    """Accuracy on gold against coverage, one point per confidence threshold; the chosen
    threshold is a star. None without gold (no accuracy)."""
    judged = [p for p in points if p.get("accuracy") is not None]
    if not judged:
        return None
    fig = Fig("Accuracy against coverage at each confidence threshold",
              legend=_LEGEND_TOP, margin={"t": 56})
    fig.add("scatter", x=[p["coverage"] for p in judged], y=[p["accuracy"] for p in judged],
            mode="lines+markers", name="threshold", line={"color": BLUE, "width": 2},
            customdata=[p["threshold"] for p in judged],
            hovertemplate="threshold %{customdata}<br>coverage %{x:.1%}<br>"
                          "accuracy %{y:.1%}<extra></extra>")
    chosen = _chosen(judged, threshold)
    if chosen is not None:
        fig.add("scatter", x=[chosen["coverage"]], y=[chosen["accuracy"]], mode="markers",
                name=f"chosen: {threshold:g}",
                marker={"symbol": "star", "size": 16, "color": RED},
                hovertemplate="chosen threshold %{customdata}<br>coverage %{x:.1%}<br>"
                              "accuracy %{y:.1%}<extra></extra>", customdata=[threshold])
    x_axis: dict[str, Any] = {"tickformat": ".0%", "title": axis_title("coverage (rows labelled)")}
    y_axis: dict[str, Any] = {"tickformat": ".0%", "title": axis_title("accuracy on gold")}
    for axis, key in ((x_axis, "coverage"), (y_axis, "accuracy")):
        span = _span([p[key] for p in judged])
        if span is not None:
            axis["range"] = [span[0] - 0.005, span[1] + 0.005]
    fig.axes(x_axis, y_axis)
    return fig


def by_threshold(points: Sequence[Mapping[str, Any]], threshold: float) -> Figure | None:
    """Coverage (and accuracy on gold, when there is gold) at each confidence threshold,
    the chosen one as a dashed line."""
    if not points:
        return None
    fig = Fig("Coverage and accuracy by confidence threshold", legend=_LEGEND_TOP,
              margin={"t": 56})
    x = [p["threshold"] for p in points]
    fig.add("scatter", x=x, y=[p["coverage"] for p in points], mode="lines+markers",
            name="coverage", line={"color": BLUE, "width": 2},
            hovertemplate="threshold %{x}<br>coverage %{y:.1%}<extra></extra>")
    judged = [p for p in points if p.get("accuracy") is not None]
    if judged:
        fig.add("scatter", x=[p["threshold"] for p in judged],
                y=[p["accuracy"] for p in judged], mode="lines+markers",
                name="accuracy on gold", line={"color": GREEN, "width": 2},
                hovertemplate="threshold %{x}<br>accuracy %{y:.1%}<extra></extra>")
    if min(x) <= threshold <= max(x):
        fig["layout"]["shapes"] = [{
            "type": "line", "xref": "x", "yref": "paper", "x0": threshold, "x1": threshold,
            "y0": 0, "y1": 1, "showlegend": True, "name": f"chosen: {threshold:g}",
            "line": {"color": RED, "width": 2, "dash": "dash"}}]
    fig.axes({"title": axis_title("confidence threshold")},
             {"tickformat": ".0%", "range": [0, 1.02], "title": axis_title("share")})
    return fig


def class_counts(counts: Mapping[str, int], classes: Sequence[str], unlabelled: int = 0
                 ) -> Figure | None:
    """Rows given each class (in the run's class order, then any other), and the rows left
    unlabelled in grey."""
    order = [c for c in classes if c in counts] + [c for c in counts if c not in classes]
    if not order:
        return None
    bars = [(label, counts[c], BLUE) for label, c in zip(axis_labels(order), order, strict=True)]
    if unlabelled > 0:
        bars.append(("(unlabelled)", unlabelled, GREY))
    fig = Fig("Labels produced per class", height=max(300, 110 + 30 * len(bars)),
              showlegend=False)
    fig.add("bar", orientation="h", y=[b[0] for b in bars], x=[b[1] for b in bars],
            marker={"color": [b[2] for b in bars]}, text=[f"{b[1]:,}" for b in bars],
            textposition="auto", hovertemplate="%{y}: %{x:,} rows<extra></extra>")
    fig.axes({"title": axis_title("rows"), "rangemode": "tozero"},
             {"type": "category", "autorange": "reversed"})
    return fig


def kappa(value: float | None, rows: int) -> Figure | None:
    """Cohen's kappa of the LLM against the human labels, on Landis & Koch's bands."""
    if value is None:
        return None
    lo = min(-0.2, value - 0.05)
    fig = Fig("Cohen's kappa, LLM against the human labels", height=190,
              subtitle=f"{value:.3f} on {rows:,} rows: {kappa_band(value)} agreement",
              showlegend=False, margin={"l": 20, "r": 20, "t": 20, "b": 40})
    shapes, notes, start = [], [], lo
    for (upper, word), colour in zip(KAPPA_BANDS, _BAND_COLOURS, strict=True):
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": start,
                       "x1": upper, "y0": 0, "y1": 1, "fillcolor": colour,
                       "line": {"width": 0}, "layer": "below"})
        notes.append({"x": (start + upper) / 2, "y": 0.95, "xref": "x", "yref": "paper",
                      "text": word, "showarrow": False, "yanchor": "top",
                      "font": {"size": 11, "color": "#374151"}})
        start = upper
    fig["layout"].update(shapes=shapes, annotations=notes)
    fig.add("scatter", x=[value], y=[0.35], mode="markers+text", text=[f"κ = {value:.2f}"],
            textposition="top center", marker={"symbol": "diamond", "size": 16,
                                               "color": "#111827"},
            hovertemplate="kappa %{x:.3f}<extra></extra>")
    fig.axes({"range": [lo, 1.0], "title": axis_title("kappa"), "zeroline": False},
             {"range": [0, 1], "visible": False})
    return fig
