"""Which current columns monitoring reads, and how: shared by the single-frame run
(:mod:`.orchestrator`) and the partitioned one (:mod:`.partitions`), so both bin the same
columns on the same reference stats and expect the same columns besides the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from forgeline.data.profile import category_strings
from forgeline.monitoring.binning import Binned, bin_column
from forgeline.monitoring.config import MonitorConfig
from forgeline.monitoring.reference import Reference
from forgeline.monitoring.windows import Clock
from forgeline.store.predictions import RESERVED_COLUMNS, stored_name

__all__ = ["ColumnJob", "column_jobs", "event_column", "expected_columns", "is_log",
           "log_inputs", "prediction_binned"]

_PASSIVE_LOG_COLUMNS = ("row", "runtime", "shadow", "model_version")  # not read here

ColumnJob = tuple[str, Mapping[str, Any], frozenset[str] | None]
"""A column to bin: its name, its reference stats, the complete set of training
categories (None when not known)."""


def column_jobs(inputs: Iterable[Any], ref: Reference, present: Iterable[str]
                ) -> tuple[list[ColumnJob], dict[str, str]]:
    """The inputs to bin (those ``present`` in the current data and in the reference
    profile), and those left out with the reason."""
    present = set(present)
    skipped: dict[str, str] = {}
    jobs: list[ColumnJob] = []
    profile_columns = ref.profile.get("columns") or {}
    means = ref.profile.get("bin_means") or {}
    for column in inputs:
        stats = profile_columns.get(column.name)
        if stats is not None and means.get(column.name) is not None:
            stats = {**stats, "bin_means": means[column.name]}
        if column.name not in present:
            skipped[column.name] = "missing from the current data"
        elif stats is None:
            skipped[column.name] = "not in the reference profile"
        elif stats.get("personal") or column.name in ref.personal:
            skipped[column.name] = ("personal data: its values are not kept, so they are "
                                    "not compared")
        else:
            jobs.append((column.name, stats, ref.categories.get(column.name)))
    return jobs, skipped


def expected_columns(label_name: str, id_column: str, config: MonitorConfig, clock: Clock,
                     event: str | None, unmonitored: Iterable[str]) -> set[str]:
    """Columns expected in the current data besides the inputs (not reported as new)."""
    ignore = {*RESERVED_COLUMNS, label_name, id_column,
              *(c for c in (config.time_column, clock.source) if c is not None)}
    if event is not None:  # the data's own time: expected beside the inputs
        ignore |= {event, stored_name(event)}
    ignore |= {f"input_{n}" for n in unmonitored}
    return ignore


def prediction_binned(section: Mapping[str, Any] | None, current: pd.DataFrame,
                      classes: tuple[Any, ...] | None) -> Binned | None:
    """The predictions (or the positive class's probability) on the reference's bins."""
    if not section:
        return None
    column = section.get("column", "prediction")
    if section.get("proba") and column in current.columns:
        return bin_column("prediction", current[column], section["proba"])
    if "prediction" not in current.columns:
        return None
    stats = section.get("labels") or section.get("values")
    if not stats:
        return None
    known = None
    if classes is not None and "categories" in stats:
        known = frozenset(str(x) for x in category_strings(pd.Series(list(classes),
                                                                      dtype=object)))
    return bin_column("prediction", current["prediction"], stats, known)


def is_log(current: pd.DataFrame) -> bool:
    """Whether ``current`` is (read from) the prediction log."""
    return "request_id" in current.columns and "shadow" in current.columns


def log_inputs(current: pd.DataFrame, sig: Any) -> tuple[pd.DataFrame, dict[str, str]]:
    """Inputs the prediction log stored as ``input_<name>`` (their name clashes with one of
    its own columns) back under their signature names, and the clashing inputs that
    cannot be: those named like a column monitoring reads itself (``ts``, ``prediction``,
    ``request_id``, ``proba_*``)."""
    if not is_log(current):
        return current, {}
    renames, unmonitored = {}, {}
    for name in sig.names:
        stored = stored_name(name)
        if stored == name or stored not in current.columns:
            continue
        if name in _PASSIVE_LOG_COLUMNS:
            renames[stored] = name
        else:
            unmonitored[name] = (f"stored as {stored!r} by the prediction log, whose own "
                                 f"{name!r} column monitoring reads")
    kept = current.drop(columns=[n for n in renames.values() if n in current.columns])
    return kept.rename(columns=renames), unmonitored


def event_column(ref: Reference, model_profile: Mapping[str, Any] | None) -> str | None:
    """The model's event-time column: named by the reference's ``time`` section, else by
    the model profile's (a reference frame has none: the model's data still has it)."""
    for profile in (ref.profile, model_profile or {}):
        section = profile.get("time")
        if isinstance(section, Mapping) and section.get("column"):
            return str(section["column"])
    return None
