"""The reports' look: colours, plot height and a small Plotly template, as plain values.

Plain dicts, not ``plotly.graph_objects``: the monitoring report builds its figures as dicts
and never needs Plotly's object layer (about a fifth of a second to import).
"""

from __future__ import annotations

__all__ = ["BLUE", "GREEN", "GREY", "HEIGHT", "ORANGE", "RED", "TEMPLATE"]

BLUE, ORANGE, GREEN, GREY, RED = "#2563eb", "#ea580c", "#16a34a", "#9ca3af", "#dc2626"
_AXIS = {"gridcolor": "#e5e7eb", "zerolinecolor": "#d1d5db", "linecolor": "#9ca3af",
         "automargin": True}
# A small template: plotly's default one is ~7 kB of JSON repeated in every figure.
TEMPLATE = {"layout": {
    "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
             "size": 12, "color": "#1f2937"},
    "colorway": [BLUE, ORANGE, GREEN, "#9333ea", RED, "#0891b2", "#ca8a04", "#db2777"],
    "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
    "xaxis": _AXIS, "yaxis": _AXIS, "margin": {"l": 60, "r": 20, "t": 36, "b": 50},
    "legend": {"bgcolor": "rgba(255,255,255,0.8)"},
}}
HEIGHT = 380
