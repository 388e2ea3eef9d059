"""The prediction log's names: its columns, how inputs and probabilities are named, and
where the log and its labels live (see the package docstring for the layout)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forgeline.config import Settings

__all__ = ["INPUT_PREFIX", "LABEL", "PART_PREFIX", "PREDICTION", "PROBA_PREFIX",
           "RESERVED_COLUMNS", "feedback_root", "prediction_log_root", "proba_column",
           "proba_columns", "stored_name"]

PREDICTION = "prediction"
RESERVED_COLUMNS = ("request_id", "row", "ts", "model_version", "runtime", "shadow",
                    PREDICTION)
PROBA_PREFIX = "proba_"
INPUT_PREFIX = "input_"
PART_PREFIX = "part-"
LABEL = "label"  # the stored labels' column


def prediction_log_root(settings: Settings) -> Path:
    """Where prediction logs live: ``<home>/predictions``."""
    return (Path(settings.home) / "predictions").absolute()


def feedback_root(settings: Settings) -> Path:
    """Where the labels joined to the logs live: ``<home>/feedback``."""
    return (Path(settings.home) / "feedback").absolute()


def proba_column(label: Any) -> str:
    """The probability column of one class: ``proba_<class>`` (the log's, a scored file's,
    and the reference profile's name for it)."""
    return f"{PROBA_PREFIX}{label}"


def proba_columns(classes: Iterable[Any]) -> list[str]:
    """:func:`proba_column` of each class, in order."""
    return [proba_column(c) for c in classes]


def stored_name(column: Any) -> str:
    """The column name an input is stored under: its own, or ``input_<name>`` while that
    clashes with a reserved column or a probability column."""
    name = str(column)
    while name in RESERVED_COLUMNS or name.startswith(PROBA_PREFIX):
        name = INPUT_PREFIX + name
    return name
