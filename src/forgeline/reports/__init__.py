"""HTML reports and a Markdown model card: of a trained model, of a monitoring run, and of
a labelling run.

Each renderer is imported on first use: the monitoring report does not load the training
report's Plotly figure objects.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forgeline.reports.card import render_card
    from forgeline.reports.html import render_report
    from forgeline.reports.labeling import render_labeling_report
    from forgeline.reports.monitoring import render_monitor_report

__all__ = ["render_card", "render_labeling_report", "render_monitor_report", "render_report"]

_WHERE = {"render_card": "card", "render_report": "html", "render_monitor_report": "monitoring",
          "render_labeling_report": "labeling"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"forgeline.reports.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'forgeline.reports' has no attribute {name!r}")
