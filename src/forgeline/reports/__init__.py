"""Reports of a trained model: a self-contained HTML report and a Markdown model card."""

from __future__ import annotations

from forgeline.reports.card import render_card
from forgeline.reports.html import render_report

__all__ = ["render_card", "render_report"]
