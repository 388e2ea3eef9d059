"""The plotly figures of the monitoring and labelling reports, built as plain dicts.

Figures are dicts in plotly's JSON schema, rendered without building ``go.Figure`` objects:
plotly's object layer costs about 60 ms a figure against 0.2 ms for the dict, and a report
can have dozens. A figure's title (and subtitle) become an HTML heading above the plot in
the report (:class:`forgeline.reports._page.Figures`); ``layout.meta.title_class`` ``"bad"``
shows the subtitle in red.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from forgeline.reports.theme import HEIGHT, TEMPLATE

__all__ = ["LABEL_CHARS", "Fig", "axis_labels", "axis_title", "short"]

LABEL_CHARS = 28


class Fig(dict):
    """A figure dict with the few helpers the plot functions use."""

    def __init__(self, title: str, height: int = HEIGHT, *, subtitle: str | None = None,
                 bad: bool = False, **layout: Any) -> None:
        heading: dict[str, Any] = {"text": title, "x": 0.02}
        if subtitle:
            heading["subtitle"] = {"text": subtitle}
        super().__init__(data=[], layout={"template": TEMPLATE, "height": height,
                                          "title": heading, **layout})
        if bad:
            self["layout"]["meta"] = {"title_class": "bad"}

    def add(self, trace_type: str, **trace: Any) -> None:
        self["data"].append({"type": trace_type, **trace})

    def axes(self, x: dict[str, Any] | None = None, y: dict[str, Any] | None = None) -> None:
        for key, value in (("xaxis", x), ("yaxis", y)):
            if value:
                self["layout"][key] = {**self["layout"].get(key, {}), **value}


def axis_title(text: str) -> dict[str, str]:
    return {"text": text}


def short(label: str) -> str:
    """``label`` cut to :data:`LABEL_CHARS` characters (an ellipsis ends a cut one)."""
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def axis_labels(names: Sequence[Any]) -> list[str]:
    """Category labels for a plot axis: each distinct, short, and with tags escaped.

    A long name keeps its start and end (``lf_a_long_na…_name_07``: names often share a
    prefix, and a category axis would merge two that were cut to the same text); if two
    still look the same every name is shown whole. Plotly reads tags such as ``<b>`` or
    ``<a>`` in labels: escaped, a user's name shows as typed.
    """
    text = [str(n) for n in names]
    half = (LABEL_CHARS - 1) // 2
    cut = [t if len(t) <= LABEL_CHARS else f"{t[:half]}…{t[-half:]}" for t in text]
    if len(set(cut)) < len(set(text)):
        cut = text
    return [html.escape(c, quote=False) for c in cut]
