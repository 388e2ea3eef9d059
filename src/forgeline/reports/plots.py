"""Plotly figures of an Evaluation, one function per plot; each returns None when the
evaluation has nothing to draw for it (e.g. no ROC curve for a regression).

Each figure has a title, for when it is shown on its own; the HTML reports write it as a
heading above the plot instead (:class:`forgeline.reports._page.Figures`), so the top
margin only leaves room for the mode bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from forgeline.entities import Evaluation
from forgeline.reports.theme import BLUE, GREY, HEIGHT, TEMPLATE

__all__ = ["calibration", "class_balance", "confusion", "fairness_groups", "importance",
           "precision_recall", "residuals", "roc", "slices", "trials"]

MAX_FEATURES = 20


def _figure(title: str, height: int = HEIGHT, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE, title={"text": title, "x": 0.02}, height=height,
                      **layout)
    return fig


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _diagonal(fig: go.Figure, **where: Any) -> None:
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                             line={"dash": "dash", "color": GREY}, hoverinfo="skip"), **where)


def confusion(ev: Evaluation) -> go.Figure | None:
    """Counts as text, colour as the share of each true class (so rare classes show)."""
    if not ev.confusion or not ev.classes:
        return None
    labels = [str(c) for c in ev.classes]
    shares = [[v / max(sum(row), 1) for v in row] for row in ev.confusion]
    fig = _figure("Confusion matrix", height=max(HEIGHT, 60 + 40 * len(labels)))
    fig.add_trace(go.Heatmap(z=shares, x=labels, y=labels, text=ev.confusion,
                             texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
                             colorbar={"title": {"text": "share of row"}},
                             hovertemplate="true %{y}<br>predicted %{x}<br>%{text} rows"
                                           "<extra></extra>"))
    fig.update_xaxes(title="predicted", type="category")
    fig.update_yaxes(title="true", type="category", autorange="reversed")
    return fig


def roc(ev: Evaluation) -> go.Figure | None:
    """The ROC curve (binary) or one one-vs-rest curve per class (multiclass)."""
    curves = ([{"class": "model", **ev.curves["roc"]}] if "roc" in ev.curves
              else ev.curves.get("roc_ovr", []))
    if not curves:
        return None
    title = "ROC curve" if "roc" in ev.curves else "ROC curves, one class against the rest"
    fig = _figure(title)
    for curve in curves:
        fig.add_trace(go.Scatter(x=curve["fpr"], y=curve["tpr"], mode="lines",
                                 name=f"{curve['class']} (AUC {curve['auc']:.3f})"))
    _diagonal(fig)
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1.02])
    return fig


def precision_recall(ev: Evaluation) -> go.Figure | None:
    """The precision-recall curve of the positive class."""
    pr = ev.curves.get("pr")
    if not pr:
        return None
    ap = pr["average_precision"]
    name = f"AP {ap:.3f}" if _finite(ap) else "model"
    fig = _figure("Precision-recall curve")
    fig.add_trace(go.Scatter(x=pr["recall"], y=pr["precision"], mode="lines", name=name))
    fig.update_xaxes(title="recall", range=[0, 1])
    fig.update_yaxes(title="precision", range=[0, 1.02])
    return fig


def calibration(ev: Evaluation) -> go.Figure | None:
    """Reliability diagram over quantile bins, with the histogram of scores below."""
    cal = ev.curves.get("calibration")
    if not cal:
        return None
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        vertical_spacing=0.06)
    fig.update_layout(template=TEMPLATE, title={"text": "Calibration", "x": 0.02},
                      height=HEIGHT + 120)
    fig.add_trace(go.Scatter(x=cal["mean_predicted"], y=cal["fraction_positive"],
                             mode="lines+markers", name="model", customdata=cal["counts"],
                             hovertemplate="predicted %{x:.3f}<br>observed %{y:.3f}"
                                           "<br>%{customdata} rows<extra></extra>"),
                  row=1, col=1)
    _diagonal(fig, row=1, col=1)
    edges = cal["hist_edges"]
    fig.add_trace(go.Bar(x=[(a + b) / 2 for a, b in pairwise(edges)],
                         y=cal["hist_counts"], width=edges[1] - edges[0], name="rows",
                         marker_color=GREY, showlegend=False), row=2, col=1)
    fig.update_xaxes(range=[0, 1])
    fig.update_xaxes(title="predicted probability", row=2, col=1)
    fig.update_yaxes(title="observed frequency", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title="rows", row=2, col=1)
    return fig


def residuals(ev: Evaluation) -> go.Figure | None:
    """Residuals against predictions (a sample) and the histogram of every residual."""
    res = ev.residuals
    if not res:
        return None
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.1,
                        subplot_titles=("Residual vs predicted", "Residual histogram"))
    fig.update_layout(template=TEMPLATE, title={"text": "Residuals (true - predicted)",
                                                "x": 0.02}, height=HEIGHT + 40, showlegend=False,
                      margin={"t": 60})
    # svg, not scattergl: WebGL is missing in some offline viewers and headless browsers.
    fig.add_trace(go.Scatter(x=res["y_pred"], y=res["residual"], mode="markers",
                             marker={"size": 5, "opacity": 0.5, "color": BLUE}), row=1, col=1)
    fig.add_hline(y=0, line={"dash": "dash", "color": GREY}, row=1, col=1)
    edges = res["hist_edges"]
    fig.add_trace(go.Bar(x=[(a + b) / 2 for a, b in pairwise(edges)],
                         y=res["hist_counts"], width=edges[1] - edges[0], marker_color=BLUE),
                  row=1, col=2)
    fig.update_xaxes(title="predicted", row=1, col=1)
    fig.update_yaxes(title="residual", row=1, col=1)
    fig.update_xaxes(title="residual", row=1, col=2)
    fig.update_yaxes(title="rows", row=1, col=2)
    return fig


def importance(ev: Evaluation) -> go.Figure | None:
    """The top features by permutation importance, largest at the top."""
    top = [r for r in ev.importance if _finite(r["mean"])][:MAX_FEATURES][::-1]
    if not top:
        return None
    fig = _figure(f"Permutation importance (how much {ev.metric} worsens)",
                  height=max(HEIGHT, 80 + 24 * len(top)))
    fig.add_trace(go.Bar(x=[r["mean"] for r in top], y=[str(r["feature"]) for r in top],
                         orientation="h", marker_color=BLUE,
                         error_x={"type": "data", "array": [r["std"] for r in top]}))
    fig.update_xaxes(title=f"mean worsening of {ev.metric} when the feature is shuffled")
    fig.update_yaxes(type="category")
    return fig


def slices(ev: Evaluation, column: str) -> go.Figure | None:
    """The primary metric per slice of one sensitive column (and rates for binary)."""
    rows = [r for r in ev.slices.get(column, []) if not r["skipped"]]
    if not rows:
        return None
    names = [str(r["value"]) for r in rows]
    fig = _figure(f"{ev.metric} by {column}", barmode="group")
    series = [ev.metric] + (["positive_rate", "tpr", "fpr"] if ev.task == "binary" else [])
    for key in series:
        fig.add_trace(go.Bar(x=names, y=[r.get(key) if _finite(r.get(key)) else None
                                          for r in rows], name=key))
    fig.update_xaxes(title=column, type="category")
    return fig


def fairness_groups(ev: Evaluation, column: str) -> go.Figure | None:
    """Selection rate, TPR and FPR per group of one sensitive column (binary), with their
    bootstrap intervals as error bars."""
    groups = (ev.fairness.get(column) or {}).get("groups") or []
    if ev.task != "binary" or not groups:
        return None
    fig = _figure(f"Rates by {column}, with 95% bootstrap intervals", barmode="group")
    for key in ("selection_rate", "tpr", "fpr"):
        values = [g.get(key) if _finite(g.get(key)) else None for g in groups]
        cis = [g.get(f"{key}_ci") or [None, None] for g in groups]
        fig.add_trace(go.Bar(
            x=[str(g["group"]) for g in groups], y=values, name=key,
            error_y={"type": "data", "symmetric": False,
                     "array": [hi - v if _finite(hi) and v is not None else 0
                               for v, (_, hi) in zip(values, cis, strict=True)],
                     "arrayminus": [v - lo if _finite(lo) and v is not None else 0
                                    for v, (lo, _) in zip(values, cis, strict=True)]}))
    fig.update_xaxes(title=column, type="category")
    fig.update_yaxes(title="rate", range=[0, 1.05])
    return fig


def trials(rows: Sequence[Mapping[str, Any]], metric: str, greater_is_better: bool
           ) -> go.Figure | None:
    """Score of every finished trial, with the best score so far."""
    done = sorted(((r.get("number", i), r["score"]) for i, r in enumerate(rows)
                   if _finite(r.get("score"))), key=lambda t: t[0])
    if not done:
        return None
    best: list[float] = []
    for _, score in done:
        best.append(score if not best else (max if greater_is_better else min)(best[-1], score))
    fig = _figure(f"Tuning: {metric} by trial")
    fig.add_trace(go.Scatter(x=[n for n, _ in done], y=[s for _, s in done], mode="markers",
                             name="trial", marker={"color": GREY, "size": 7}))
    fig.add_trace(go.Scatter(x=[n for n, _ in done], y=best, mode="lines", name="best so far",
                             line={"shape": "hv", "color": BLUE, "width": 2}))
    fig.update_xaxes(title="trial")
    fig.update_yaxes(title=metric)
    return fig


def class_balance(balance: Mapping[str, Any]) -> go.Figure | None:
    """Rows (or share) per class of the target."""
    if not balance:
        return None
    fig = _figure("Class balance", height=300)
    fig.add_trace(go.Bar(x=[str(k) for k in balance], y=list(balance.values()),
                         marker_color=BLUE))
    fig.update_xaxes(title="class", type="category")
    return fig
