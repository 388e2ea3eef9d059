"""Top reasons in words: ``amount 2,450 (+0.31)``, the columns that moved a prediction most."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["format_contribution", "format_reasons", "format_value"]

_TEXT = 30  # characters of a text value quoted in a reason


def format_reasons(row: Any, columns: Sequence[str], contributions: np.ndarray,
                   top: int = 3) -> list[str]:
    """The ``top`` columns by absolute contribution (ties in column order), in words."""
    order = sorted(range(len(columns)), key=lambda i: -abs(float(contributions[i])))
    return [f"{columns[i]} {format_value(row[columns[i]])} "
            f"({format_contribution(float(contributions[i]))})" for i in order[:top]]


def format_value(value: Any) -> str:
    """A value as a person reads it: ``2,450``, ``0.35``, ``2024-01-05 14:00``, ``FR``."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "missing"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isfinite(number) and number == round(number) and abs(number) < 1e15:
            return f"{int(number):,}"
        return f"{number:,.2f}" if abs(number) >= 1 else f"{number:.3g}"
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d" if value == value.normalize() else "%Y-%m-%d %H:%M")
    text = str(value)
    text = text if len(text) <= _TEXT else text[:_TEXT - 1] + "…"
    return f'"{text}"' if " " in text else text


def format_contribution(value: float) -> str:
    """A signed contribution: ``+0.31``, ``-1,250``, ``+0.0042``."""
    if abs(value) >= 100:
        return f"{value:+,.0f}"
    if abs(value) >= 0.01 or value == 0:
        return f"{value:+.2f}"
    return f"{value:+.2g}"
