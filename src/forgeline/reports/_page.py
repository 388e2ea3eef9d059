"""What the HTML reports share besides the template: figures as HTML, and the page write.

A figure's title is taken out of the plot and written as an HTML heading above it (its
subtitle beside it, muted). Inside the plot a title shares the top strip with plotly's
mode bar and the legend, and in a narrow plot they overlap and the title is cut; as HTML
it wraps instead. The mode bar itself shows only while the pointer is over the plot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.io as pio
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from forgeline.reports._template import CSS, template
from forgeline.util.files import atomic_write

__all__ = ["PLOT_CONFIG", "Figures", "render_page", "write_html"]

# A short mode bar (save as PNG, zoom, pan, reset) fits beside the legend of a narrow plot.
# No "Share chart" button: it uploads the figure's data to Plotly's cloud service.
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "displayModeBar": "hover",
               "showSendToCloud": False,
               "modeBarButtonsToRemove": ["sendChartToCloud", "select2d", "lasso2d",
                                          "zoomIn2d", "zoomOut2d", "autoScale2d",
                                          "toggleSpikelines", "downloadJson",
                                          "hoverClosestCartesian", "hoverCompareCartesian"]}
_DEFAULT_HEIGHT = 380


def _pop_title(layout: dict[str, Any]) -> tuple[str | None, str | None, str]:
    """Title, subtitle and the subtitle's class, taken out of ``layout``."""
    title = layout.pop("title", None)
    meta = layout.get("meta")
    mood = str(meta.get("title_class", "")) if isinstance(meta, Mapping) else ""
    if isinstance(title, str):
        return title, None, mood
    if not isinstance(title, Mapping):
        return None, None, mood
    sub = title.get("subtitle")
    sub = sub.get("text") if isinstance(sub, Mapping) else sub
    return title.get("text"), sub, mood


class Figures:
    """Figure (a ``plotly.graph_objects.Figure`` or its dict) -> ``<div class="plot">``
    with the title as a heading; plotly.js itself sits once in the page head.

    ``layout.meta.title_class`` ``"bad"`` shows the subtitle in red.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: Any) -> Markup | None:
        if fig is None:
            return None
        self.count += 1
        if not isinstance(fig, Mapping):
            fig = fig.to_plotly_json()  # a Figure: its dict, plotly validated it already
        layout = dict(fig.get("layout") or {})
        title, subtitle, mood = _pop_title(layout)
        height = layout.get("height") or _DEFAULT_HEIGHT
        plot = pio.to_html({**fig, "layout": layout}, full_html=False, include_plotlyjs=False,
                           config=PLOT_CONFIG, div_id=f"plot-{self.count}",
                           default_width="100%", default_height=f"{height}px",
                           validate=False)
        heading = Markup("")
        if title:
            cls = f"sub {mood}" if mood else "sub"
            sub = (Markup(' <span class="{}">{}</span>').format(cls, subtitle)
                   if subtitle else "")
            heading = Markup("<h4>{}{}</h4>").format(title, sub)
        return Markup('<div class="plot">{}{}</div>').format(heading, Markup(plot))


def render_page(name: str, context: Mapping[str, Any]) -> str:
    """The page of template ``name`` with the shared parts (stylesheet, plotly.js) added."""
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ", timespec="seconds")
    return template(name).render({"css": Markup(CSS), "plotlyjs": Markup(get_plotlyjs()),
                                  "generated": now, **context})


def write_html(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (its folder created) atomically: a reader sees the old
    file or the new one, never part of it. Returns the path."""
    return atomic_write(path, text)
