"""Shared printing: Rich tables for people, ``--json`` for scripts, one-line errors.

JSON conventions (every ``--json`` output follows them):

- entities are their dataclass fields (``dataclasses.asdict``); tuples become arrays;
- times stay as in the store: integer milliseconds since the Unix epoch (UTC);
- NaN and ±infinity, which JSON cannot represent, are the strings ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"`` (the proto3 JSON mapping, as MLflow's REST API
  writes them); every other number is a JSON number;
- the output is one JSON document on stdout; messages for people go to stderr.

Tables render times in local time and durations in h/m/s. Rich drops colour when stdout
is not a terminal (or NO_COLOR is set); when it is not a terminal and COLUMNS is unset,
tables are laid out at a generous width so piped output is not cropped at 80 columns.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from forgeline.util.json import jsonable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from forgeline.entities import RunStatus

__all__ = ["console", "error_line", "fmt_time", "fmt_value",
           "key_value_table", "print_json", "print_table", "short_id",
           "status_text", "table"]

_PIPE_WIDTH = 200
_STATUS_STYLE = {"RUNNING": "cyan", "FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}


# -- JSON -------------------------------------------------------------------------------
def print_json(value: Any) -> None:
    """Print ``value`` as one indented JSON document on stdout (plain text, no colour)."""
    typer.echo(json.dumps(jsonable(value, non_finite_as_text=True), indent=2,
                          ensure_ascii=False, allow_nan=False))


# -- errors -----------------------------------------------------------------------------
def error_line(message: str) -> None:
    """Print ``error: <message>`` as exactly one line on stderr (red prefix on a terminal)."""
    flat = " ".join(str(message).split()) or "unknown error"
    typer.echo(f"{typer.style('error:', fg='red', bold=True)} {flat}", err=True)


# -- tables -----------------------------------------------------------------------------
def console() -> Console:
    from rich.console import Console

    width = None
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        width = _PIPE_WIDTH
    return Console(width=width, highlight=False)


def table(*columns: str, title: str | None = None, **kwargs: Any) -> Table:
    from rich.table import Table

    # at least as wide as the title, which Rich would otherwise wrap to the table's width
    kwargs.setdefault("min_width", len(title) + 2 if title else None)
    t = Table(title=title, title_justify="left", title_style="bold", **kwargs)
    for name in columns:
        t.add_column(name, overflow="fold")
    return t


def print_table(t: Table, empty: str = "Nothing to show.") -> None:
    """Print ``t``, or the dim line ``empty`` when it has no rows."""
    if t.row_count:
        console().print(t)
    else:
        console().print(empty, style="dim")


def key_value_table(rows: Iterable[tuple[str, str | Text]], title: str | None = None) -> Table:
    """A two-column table (key, value) without a header, for ``show`` sections."""
    t = table("key", "value", title=title, show_header=False)
    t.columns[0].style = "bold"
    for key, value in rows:
        t.add_row(key, value)
    return t


# -- values -----------------------------------------------------------------------------
def short_id(run_id: str | None) -> str:
    return run_id[:8] if run_id else "-"


def fmt_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS``; ``-`` when unset."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_value(value: Any) -> str:
    """A metric or param for a table: floats to 6 significant digits, NaN/inf by name."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def status_text(status: RunStatus | str) -> Text:
    from rich.text import Text

    name = str(status)
    return Text(name, style=_STATUS_STYLE.get(name, ""))
