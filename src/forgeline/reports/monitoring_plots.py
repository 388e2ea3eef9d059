"""Plotly figures of a monitoring result's JSON form, in the training report's theme.

Each function reads a part of ``MonitorResult.to_dict()`` (a feature's drift, the windows,
the multivariate check, the performance), never the monitoring objects themselves: the
reports stage does not import the monitoring stage.

Figures are plain dicts (:mod:`._figs`): a report has one figure per feature. Each function
returns None when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from forgeline.reports._figs import Fig, axis_labels, axis_title
from forgeline.reports.theme import BLUE, GREY, HEIGHT, ORANGE, RED

Figure = dict[str, Any]

__all__ = ["attribution", "distribution", "drift_heatmap", "drift_over_time", "multivariate",
           "performance_over_time"]

MAX_HEATMAP_FEATURES = 20
MAX_ATTRIBUTION_FEATURES = 20
MAX_CATEGORIES = 12  # bars per distribution (wide enough to see); the rest join (other)


def _bars(f: Mapping[str, Any]) -> tuple[list[str], list[float], list[float], list[str]]:
    """Labels, reference and current shares, and hover notes of the bars to draw.

    Categories beyond :data:`MAX_CATEGORIES` (the smallest in both reference and current)
    are added to the ``(other)`` bar (``bins["other"]``, the last bucket), which already
    holds the categories beyond the profile's top ones (its ``other_count``); an
    ``(other)`` bar empty on both sides (every category is known) is left out.
    """
    bins = f["bins"]
    labels, ref, cur = list(bins["labels"]), list(bins["reference"]), list(bins["current"])
    notes = [""] * len(labels)
    other = bins.get("other")
    if other is None or not labels or labels[-1] != other:  # numeric bins have no other
        return labels, ref, cur, notes
    other_ref, other_cur = ref.pop(), cur.pop()
    labels.pop()
    notes.pop()
    folded = 0
    if len(labels) > MAX_CATEGORIES:
        ranked = sorted(range(len(labels)), key=lambda i: -max(ref[i], cur[i]))
        keep = sorted(ranked[:MAX_CATEGORIES])
        dropped = ranked[MAX_CATEGORIES:]
        other_ref += sum(ref[i] for i in dropped)
        other_cur += sum(cur[i] for i in dropped)
        folded = len(dropped)
        labels, ref, cur = [labels[i] for i in keep], [ref[i] for i in keep], [cur[i] for i in keep]
        notes = [""] * len(labels)
    if other_ref > 0 or other_cur > 0:
        note = "categories beyond the training profile's most frequent ones"
        if folded:
            note += f", and {folded} smaller ones not drawn"
        labels.append(other)
        ref.append(other_ref)
        cur.append(other_cur)
        notes.append(f"<br>{note}")
    return labels, ref, cur, notes


def distribution(f: Mapping[str, Any], title: str | None = None) -> Figure | None:
    """Reference and current shares per bin (categories: the largest of the reference's
    top ones, and ``(other)``) of one feature's drift (``to_dict()["features"][name]``)."""
    if not f.get("bins"):
        return None
    score = "—" if f["score"] is None else f"{f['score']:.3g}"
    drifted = f["drifted"]
    verdict = "drifted" if drifted else "no drift"
    # The legend sits below the strip the mode bar takes at the top of the figure.
    fig = Fig(title or f["column"], height=320, subtitle=f"{f['method']} {score}, {verdict}",
               bad=drifted, barmode="group", bargap=0.15,
               margin={"t": 56}, legend={"orientation": "h", "x": 0, "xanchor": "left",
                                         "y": 1.02, "yanchor": "bottom"})
    names, ref, cur, notes = _bars(f)
    labels = axis_labels(names)
    fig.add("bar", x=labels, y=ref, name="reference", marker={"color": GREY},
            customdata=notes,
            hovertemplate="%{x}<br>%{y:.1%}%{customdata}<extra>reference</extra>")
    fig.add("bar", x=labels, y=cur, name="current",
            marker={"color": RED if drifted else BLUE}, customdata=notes,
            hovertemplate="%{x}<br>%{y:.1%}%{customdata}<extra>current</extra>")
    x_axis: dict[str, Any] = {"type": "category", "tickangle": -45 if len(labels) > 6 else 0}
    if f["kind"] == "numeric" and len(labels) > 8:
        x_axis["nticks"] = 8  # quantile-bin labels are long: every other one or so
    fig.axes(x_axis, {"title": axis_title("share of rows"), "tickformat": ".0%"})
    return fig


def drift_over_time(windows: Sequence[Mapping[str, Any]], threshold: float) -> Figure | None:
    """Share of drifted features per window (and the prediction's drift verdicts)."""
    scored = [w for w in windows if w.get("dataset_drift_share") is not None]
    if not scored:
        return None
    fig = Fig("Dataset drift by window: share of drifted features")
    x = [w["window"] for w in scored]
    fig.add("scatter", x=x, y=[w["dataset_drift_share"] for w in scored],
            mode="lines+markers", name="drifted share", line={"color": BLUE, "width": 2},
            text=[", ".join(w["drifted"][:5]) or "none" for w in scored],
            hovertemplate="%{x}<br>%{y:.0%} drifted<br>%{text}<extra></extra>")
    fig.add("scatter", x=x, y=[threshold] * len(x), mode="lines", name="threshold",
            line={"dash": "dash", "color": RED}, hoverinfo="skip")
    flagged = [w for w in scored if (w.get("prediction") or {}).get("drifted")]
    if flagged:
        fig.add("scatter", x=[w["window"] for w in flagged],
                y=[w["dataset_drift_share"] for w in flagged], mode="markers",
                name="prediction drifted",
                marker={"symbol": "x", "size": 11, "color": ORANGE})
    fig.axes({"type": "category", "title": axis_title("window")},
             {"title": axis_title("share of features"), "tickformat": ".0%",
              "range": [0, 1.05]})
    return fig


def drift_heatmap(windows: Sequence[Mapping[str, Any]]) -> Figure | None:
    """PSI per feature and window, for the features with the highest PSI."""
    scored = [w for w in windows if w.get("features")]
    if not scored:
        return None
    peak: dict[str, float] = {}
    for w in scored:
        for name, s in w["features"].items():
            if s.get("psi") is not None:
                peak[name] = max(peak.get(name, 0.0), s["psi"])
    top = sorted(peak, key=lambda n: -peak[n])[:MAX_HEATMAP_FEATURES]
    if not top:
        return None
    z = [[(w["features"].get(n) or {}).get("psi") for w in scored] for n in top]
    marks = [["drifted" if (w["features"].get(n) or {}).get("drifted") else "" for w in scored]
             for n in top]
    fig = Fig(f"PSI by window (top {len(top)} features)",
               height=max(300, 80 + 24 * len(top)))
    fig.add("heatmap", z=z, x=[w["window"] for w in scored], y=axis_labels(top),
            text=marks, colorscale="Reds", zmin=0, zmax=max(0.25, max(peak[n] for n in top)),
            colorbar={"title": {"text": "PSI"}},
            hovertemplate="%{y}<br>%{x}<br>PSI %{z:.3f} %{text}<extra></extra>")
    fig.axes({"type": "category", "title": axis_title("window")},
             {"type": "category", "autorange": "reversed"})
    return fig


def multivariate(result: Mapping[str, Any]) -> Figure | None:
    """Reconstruction error by window, inside or outside its reference band."""
    rows = [w for w in result.get("windows") or () if w.get("error") is not None]
    if not rows:
        return None
    fig = Fig("Multivariate drift: PCA reconstruction error by window")
    x = [w["window"] for w in rows]
    fig.add("scatter", x=x + x[::-1],
            y=[w["upper"] for w in rows] + [w["lower"] for w in rows][::-1], fill="toself",
            fillcolor="rgba(156,163,175,0.25)", line={"width": 0}, name="reference band",
            hoverinfo="skip")
    fig.add("scatter", x=x, y=[w["error"] for w in rows], mode="lines+markers",
            name="error", line={"color": BLUE, "width": 2},
            marker={"color": [RED if w["drifted"] else BLUE for w in rows], "size": 8})
    fig.axes({"type": "category", "title": axis_title("window")},
             {"title": axis_title("mean reconstruction error")})
    return fig


def performance_over_time(perf: Mapping[str, Any], metric: str) -> Figure | None:
    """One metric by window: realised, estimated, and the test value as a line."""
    windows = perf.get("windows") or []
    real = [(w["window"], (w.get("realized") or {}).get(metric)) for w in windows]
    est = [(w["window"], (w.get("estimated") or {}).get(metric)) for w in windows]
    real = [(x, y) for x, y in real if y is not None and math.isfinite(y)]
    est = [(x, y) for x, y in est if y is not None and math.isfinite(y)]
    if not real and not est:
        return None
    fig = Fig(f"{metric} by window")
    if real:
        fig.add("scatter", x=[x for x, _ in real], y=[y for _, y in real],
                mode="lines+markers", name="realised", line={"color": BLUE, "width": 2})
    if est:
        fig.add("scatter", x=[x for x, _ in est], y=[y for _, y in est],
                mode="lines+markers", name="estimated (CBPE)",
                line={"color": ORANGE, "dash": "dot", "width": 2})
    test = (perf.get("reference") or {}).get(metric)
    labels = [w["window"] for w in windows]
    if test is not None and labels:
        fig.add("scatter", x=labels, y=[test] * len(labels), mode="lines", name="test",
                line={"dash": "dash", "color": GREY}, hoverinfo="skip")
    fig.axes({"type": "category", "title": axis_title("window")},
             {"title": axis_title(metric)})
    return fig


def attribution(a: Mapping[str, Any]) -> Figure | None:
    """Reference and current mean |contribution| per feature (the largest of either on
    top); flagged features' current bars in red."""
    features = a.get("features") or {}
    top = sorted(features, key=lambda c: -max(features[c]["reference"],
                                              features[c]["current"]))
    top = top[:MAX_ATTRIBUTION_FEATURES][::-1]
    if not top:
        return None
    drifted = a.get("drifted_features") or []
    fig = Fig(f"Attribution drift: mean |contribution| per feature ({a['units']})",
               height=max(HEIGHT, 90 + 30 * len(top)),
               subtitle=f"{len(drifted)} feature(s) moved" if drifted else "no feature moved",
               bad=bool(drifted), barmode="group",
               legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"})
    labels = axis_labels(top)
    fig.add("bar", orientation="h", y=labels, x=[features[c]["reference"] for c in top],
            name="reference (test split)", marker={"color": GREY},
            hovertemplate="%{y}: %{x:.4g}<extra>reference</extra>")
    fig.add("bar", orientation="h", y=labels, x=[features[c]["current"] for c in top],
            name="current", marker={"color": [RED if c in drifted else BLUE for c in top]},
            customdata=[f"{features[c]['share_change']:+.1%}" for c in top],
            hovertemplate="%{y}: %{x:.4g} (share %{customdata})<extra>current</extra>")
    fig.axes(x={"title": axis_title(f"mean |contribution| ({a['units']})")},
             y={"type": "category"})
    return fig
