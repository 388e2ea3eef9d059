"""Monitoring history: what each run found, kept in the store for trends and charts.

``forgeline monitor`` and the server's periodic monitor both turn their
:class:`~forgeline.monitoring.result.MonitorResult` into one
:class:`~forgeline.entities.MonitoringRecord` (:func:`to_record`) and keep it
(:func:`record_result`). Recording is a side effect of monitoring, not its purpose: a store
that cannot be written costs a warning, never the result already computed. Only finite
numbers are kept, so every backend (and JSON) round-trips a record exactly.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from forgeline.entities import MonitoringRecord
from forgeline.errors import ForgelineError
from forgeline.monitoring.result import MonitorResult
from forgeline.store.base import Store
from forgeline.util.time import now_ms, parse_time

__all__ = ["record_result", "to_record"]

_QUALITY = ("missing_share", "out_of_range_share", "unseen_share")


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):  # bool is an int
        return float(value)
    return None


def _finite_items(items: Iterable[tuple[str, Any]]) -> dict[str, float]:
    return {k: f for k, v in items if (f := _finite(v)) is not None}


def _quality(result: MonitorResult) -> dict[str, float]:
    """``<figure>.<column>`` per column (missing, out-of-range, unseen shares) and the
    frame's ``duplicate_share``."""
    out = _finite_items((f"{key}.{name}", row.get(key))
                        for name, row in result.quality.columns.items() for key in _QUALITY)
    out.update(_finite_items([("duplicate_share", result.quality.duplicate_share)]))
    return out


def _most_drifted_first(result: MonitorResult) -> tuple[str, ...]:
    """The drifted features by PSI, largest first (the scores of different methods do not
    compare: a p-value falls as drift grows, a distance rises)."""
    def psi(name: str) -> float:
        f = result.features.get(name)
        return -(_finite(f.stats.get("psi")) or 0.0) if f is not None else 0.0
    return tuple(sorted(result.dataset.drifted_features, key=psi))


def to_record(result: MonitorResult, *, source: str, model: str | None = None,
              report: str | Path | None = None, creation_time: int | None = None
              ) -> MonitoringRecord:
    """The record of one monitoring run.

    Args:
        result: what the run found.
        source: ``monitor`` (the command) or ``serve`` (the server's periodic monitor).
        model: the name the history is kept under; ``result.model`` by default.
        report: where the run's HTML report was written, if anywhere.
        creation_time: when it is recorded (epoch ms); now by default.
    """
    period: Mapping[str, str | None] = result.period or {}
    perf = result.performance
    prediction = None if result.prediction is None else _finite(result.prediction.score)
    return MonitoringRecord(
        record_id=uuid.uuid4().hex, model=model or result.model, version=result.version,
        window_start=parse_time(period.get("start"), "the period's start"),
        window_end=parse_time(period.get("end"), "the period's end"),
        creation_time=now_ms() if creation_time is None else creation_time,
        source=source, rows=int(result.rows),
        dataset_drift=_finite(result.dataset.share) or 0.0,
        dataset_drifted=bool(result.dataset.drifted), prediction_drift=prediction,
        features=_finite_items((n, f.score) for n, f in result.features.items()),
        drifted=_most_drifted_first(result), quality=_quality(result),
        metrics=_finite_items(perf.realized.items()) if perf is not None else {},
        estimated=_finite_items(perf.estimated.items()) if perf is not None else {},
        alerts=tuple(a.rule for a in result.fired), clock=result.clock.label,
        report=None if report is None else str(report))


def record_result(store: Store, result: MonitorResult, *, source: str, model: str,
                  report: str | Path | None = None) -> str | None:
    """Keep a run's record in ``store``; None when kept, else a one-line warning saying
    why it was not (the caller shows it and goes on: the result stands)."""
    try:
        store.record_monitoring(to_record(result, source=source, model=model, report=report))
    except (ForgelineError, OSError) as e:
        return f"monitoring history not recorded for {model}: {' '.join(str(e).split())}"
    return None
