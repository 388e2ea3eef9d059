"""The table cells the HTML reports build: formatted values, rows, tables and badges.

A table is ``{"headers": [(text, css class)], "rows": [{"cls": ..., "cells": [(text, css
class)]}]}``, what the ``table`` macro of :mod:`._template` renders; cell text is escaped
there unless it is :class:`~markupsafe.Markup` (a badge, a ``<code>`` span).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup

from forgeline.data.findings import Severity

__all__ = ["SEVERITY_ORDER", "badge", "fmt", "num", "row", "table"]

SEVERITY_ORDER = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2}  # worst first


def fmt(value: Any, key: str = "") -> str:
    """A value as the reports show it: 4 significant digits, shares as percentages."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if ("share" in key or "rate" in key) and 0.0 <= value <= 1.0:
            return f"{value:.1%}"
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, Mapping | list | tuple):
        text = json.dumps(value, default=str, separators=(", ", ": "))
        return text if len(text) <= 160 else text[:157] + "..."
    return str(value)


def num(value: Any, key: str = "") -> tuple[str, str]:
    """A right-aligned number cell (formatted by :func:`fmt`)."""
    return fmt(value, key), "num"


def badge(text: str, cls: str) -> Markup:
    """A coloured label: ``fail``, ``warn``, ``info``, ``ok`` or ``drift`` (the stylesheet's)."""
    return Markup('<span class="badge {}">{}</span>').format(cls, text)


def row(*cells: Any, cls: str = "") -> dict[str, Any]:
    """A table row; a cell is text or a (text, css class) pair."""
    return {"cls": cls, "cells": [c if isinstance(c, tuple) else (c, "") for c in cells]}


def table(headers: Sequence[str | tuple[str, str]], rows: list[dict[str, Any]]
          ) -> dict[str, Any]:
    """A table of :func:`row` rows; a header is text or a (text, css class) pair."""
    return {"headers": [h if isinstance(h, tuple) else (h, "") for h in headers], "rows": rows}
