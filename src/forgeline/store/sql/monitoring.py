"""Monitoring history in SQL: one row per monitoring run, its dicts and lists as JSON."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from forgeline.entities import MonitoringRecord
from forgeline.errors import InvalidInput
from forgeline.store.sql import tables as t
from forgeline.store.sql.base import SqlBase

_mr = t.monitoring_records.c
_RECORD_ID = re.compile(r"^[0-9a-f]{32}$")
_JSON_FIELDS = ("features", "drifted", "quality", "metrics", "estimated", "alerts")


def _malformed(record: MonitoringRecord, problem: str) -> InvalidInput:
    return InvalidInput(f"Malformed monitoring record {record.record_id!r}: {problem}.",
                        hint="Build records with forgeline.monitoring.history.to_record.")


def _figures(record: MonitoringRecord, field: str) -> dict[str, float]:
    value = getattr(record, field)
    try:
        if not isinstance(value, Mapping):
            raise TypeError
        return {str(k): float(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise _malformed(record, f"{field} must map names to numbers, got {value!r}") from None


def _names(record: MonitoringRecord, field: str) -> list[str]:
    value = getattr(record, field)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise _malformed(record, f"{field} must be a list of names, got {value!r}")
    return list(value)


def _number(record: MonitoringRecord, field: str) -> float | None:
    """A float field; NaN as None (SQLite cannot store NaN: NULL stands for it, as for
    metric values)."""
    value = getattr(record, field)
    if value is None and field == "prediction_drift":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _malformed(record, f"{field} must be a number, got {value!r}")
    return None if math.isnan(value) else float(value)


def _ms(record: MonitoringRecord, field: str) -> int | None:
    value = getattr(record, field)
    if value is None and field != "creation_time":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(record, f"{field} must be epoch milliseconds, got {value!r}")
    return value


def _row(record: MonitoringRecord) -> dict[str, Any]:
    """The row of a record, checked: InvalidInput saying what is wrong."""
    if not isinstance(record.record_id, str) or not _RECORD_ID.match(record.record_id):
        raise _malformed(record, "record_id must be 32 lowercase hex characters "
                                 "(uuid.uuid4().hex)")
    if not isinstance(record.model, str) or not record.model.strip() or len(record.model) > 1000:
        raise _malformed(record, f"model must be a non-empty name, got {record.model!r}")
    if not isinstance(record.source, str) or not 0 < len(record.source) <= 16:
        raise _malformed(record, f"source must be 'monitor' or 'serve', got {record.source!r}")
    if isinstance(record.rows, bool) or not isinstance(record.rows, int) or record.rows < 0:
        raise _malformed(record, f"rows must be a count, got {record.rows!r}")
    start, end = _ms(record, "window_start"), _ms(record, "window_end")
    if start is not None and end is not None and start > end:
        raise _malformed(record, "window_start is after window_end")
    created = _ms(record, "creation_time")
    row: dict[str, Any] = {
        "record_id": record.record_id, "model": record.model,
        "version": None if record.version is None else str(record.version),
        "window_start": start, "window_end": end, "creation_time": created,
        "end_time": created if end is None else end,
        "source": record.source, "rows": record.rows,
        "dataset_drift": _number(record, "dataset_drift"),
        "dataset_drifted": bool(record.dataset_drifted),
        "prediction_drift": _number(record, "prediction_drift"),
        "clock": str(record.clock or ""),
        "report": None if record.report is None else str(record.report),
    }
    for field in _JSON_FIELDS:
        value: Any = (_names(record, field) if field in ("drifted", "alerts")
                      else _figures(record, field))
        row[field] = json.dumps(value, sort_keys=True)
    return row


def _record(r: Row[Any]) -> MonitoringRecord:
    return MonitoringRecord(
        record_id=r.record_id, model=r.model, version=r.version, window_start=r.window_start,
        window_end=r.window_end, creation_time=r.creation_time, source=r.source, rows=r.rows,
        dataset_drift=math.nan if r.dataset_drift is None else r.dataset_drift,
        dataset_drifted=bool(r.dataset_drifted), prediction_drift=r.prediction_drift,
        features=json.loads(r.features), drifted=tuple(json.loads(r.drifted)),
        quality=json.loads(r.quality), metrics=json.loads(r.metrics),
        estimated=json.loads(r.estimated), alerts=tuple(json.loads(r.alerts)),
        clock=r.clock, report=r.report)


class MonitoringMixin(SqlBase):
    def record_monitoring(self, record: MonitoringRecord) -> None:
        row = _row(record)
        self._write(lambda conn: self._upsert(conn, t.monitoring_records, [row],
                                              keys=("record_id",)))

    def get_monitoring_history(self, model: str, since: int | None = None,
                               until: int | None = None, limit: int = 10_000
                               ) -> list[MonitoringRecord]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"Invalid limit {limit!r} for the monitoring history.",
                               hint="Pass a positive number of records.")
        query = sa.select(t.monitoring_records).where(_mr.model == model)
        if since is not None:
            query = query.where(_mr.end_time >= int(since))
        if until is not None:
            query = query.where(_mr.end_time <= int(until))
        # The newest ``limit`` records, returned oldest first.
        query = query.order_by(_mr.end_time.desc(), _mr.creation_time.desc(),
                               _mr.record_id.desc()).limit(limit)

        def read(conn: Connection) -> list[MonitoringRecord]:
            return [_record(r) for r in conn.execute(query)]
        return self._read(read)[::-1]
