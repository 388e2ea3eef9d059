"""The JSON form of every entity the team server and its client exchange: one place.

``dump_*`` turns an entity into plain JSON values, ``load_*`` reads one back, checking
every field's type; a malformed field raises InvalidInput naming its path
(``artifacts[2].size``), so a bad request is a 400 that says what to fix. Both the server
(:mod:`forgeline.server`) and :class:`~forgeline.store.http.HttpStore` use this module.

Numbers: JSON has no NaN or infinity, and metrics keep them, so a non-finite float is
sent as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``. Metric points travel as
compact arrays (``[key, value, step, timestamp]``; a history as ``[value, step,
timestamp]``), since a batch holds thousands of them. Bodies are encoded with orjson.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields
from typing import Any, TypeVar

import orjson

from forgeline.entities import (
    AliasEvent,
    ApiToken,
    Artifact,
    Dataset,
    Experiment,
    Lineage,
    Metric,
    MetricSeries,
    ModelVersion,
    MonitoringRecord,
    RegisteredModel,
    Role,
    Run,
    RunKeys,
    RunStatus,
)
from forgeline.errors import InvalidInput
from forgeline.store.base import MetricPoint

__all__ = [
    "API_PREFIX", "dump_alias_event", "dump_artifact", "dump_dataset", "dump_experiment",
    "dump_lineage", "dump_metric_points", "dump_metric_series", "dump_metrics",
    "dump_model_version", "dump_monitoring", "dump_registered_model", "dump_run",
    "dump_run_keys", "dump_token", "encode", "load_alias_event", "load_artifact",
    "load_dataset", "load_experiment", "load_float", "load_metric_points", "load_metric_series",
    "load_metrics", "load_model_version", "load_monitoring", "load_registered_model",
    "load_run", "load_run_keys", "load_token", "num", "optional", "required",
]

API_PREFIX = "/api/forgeline/v1"  # every route of the REST API is under it
T = TypeVar("T")
_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_MISSING = object()


def encode(payload: Any) -> bytes:
    """JSON bytes (orjson)."""
    return orjson.dumps(payload)


# -- numbers ------------------------------------------------------------------------------
def num(value: float) -> float | str:
    """A float as JSON: itself when finite, else ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""
    if value - value == 0:  # false for NaN and ±inf only
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def load_float(value: Any, where: str) -> float:
    """A JSON number (or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``) as a float."""
    kind = type(value)
    if kind is float or (kind is int):
        return float(value)
    if kind is str and value in _SPECIAL:
        return _SPECIAL[value]
    raise _bad(where, "a number", value)


def _bad(where: str, expected: str, value: Any) -> InvalidInput:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidInput(f"Invalid field {where!r}: expected {expected}, got {shown}.",
                        hint="Fix the field and send the request again.")


# -- typed field readers --------------------------------------------------------------------
def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, "a JSON object", value)
    return value


def _str(value: Any, where: str) -> str:
    if type(value) is not str:
        raise _bad(where, "a string", value)
    return value


_INT64 = 1 << 63  # what every store's integers hold


def _int(value: Any, where: str) -> int:
    if type(value) is not int or not -_INT64 <= value < _INT64:
        raise _bad(where, "a 64-bit integer", value)
    return value


def _bool(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _bad(where, "true or false", value)
    return value


def _str_dict(value: Any, where: str) -> dict[str, str]:
    for k, v in _obj(value, where).items():
        _str(v, f"{where}.{k}")
    return dict(value)


def _float_dict(value: Any, where: str) -> dict[str, float]:
    return {k: load_float(v, f"{where}.{k}") for k, v in _obj(value, where).items()}


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(where, "a list", value)
    return value


def _str_list(value: Any, where: str) -> list[str]:
    return [_str(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where))]


def required(data: Mapping[str, Any], key: str, read: Callable[[Any, str], T],
             where: str = "") -> T:
    """``data[key]`` read by ``read``; InvalidInput naming the field if missing or malformed."""
    path = f"{where}.{key}" if where else key
    value = data.get(key, _MISSING)
    if value is _MISSING:
        raise InvalidInput(f"Missing field {path!r}.", hint="Add it and send the request again.")
    return read(value, path)


def optional(data: Mapping[str, Any], key: str, read: Callable[[Any, str], T],
             default: Any = None, where: str = "") -> Any:
    """``data[key]`` read by ``read``, or ``default`` when missing or null."""
    value = data.get(key)
    if value is None:
        return default
    return read(value, f"{where}.{key}" if where else key)


READERS: dict[str, Callable[[Any, str], Any]] = {
    "object": _obj, "list": _list, "str": _str, "int": _int, "bool": _bool, "float": load_float,
    "str_dict": _str_dict, "float_dict": _float_dict, "str_list": _str_list,
}
"""The field readers by name, for the server's request bodies."""


# -- metrics ----------------------------------------------------------------------------------
def dump_metric_points(points: Sequence[MetricPoint]) -> list[list[Any]]:
    return [[k, v if v - v == 0 else num(v), s, t] for k, v, s, t in points]


def load_metric_points(value: Any, where: str = "metrics") -> list[MetricPoint]:
    if not isinstance(value, list):
        raise _bad(where, "a list of [key, value, step, timestamp]", value)
    points: list[MetricPoint] = []
    for i, point in enumerate(value):
        if type(point) is not list or len(point) != 4:
            raise _bad(f"{where}[{i}]", "[key, value, step, timestamp]", point)
        key, v, step, ts = point
        if type(key) is not str:
            raise _bad(f"{where}[{i}][0]", "a string (the metric key)", key)
        if type(v) is not float:
            v = load_float(v, f"{where}[{i}][1]")
        if type(step) is not int or not -_INT64 <= step < _INT64:
            raise _bad(f"{where}[{i}][2]", "a 64-bit integer (the step)", step)
        if type(ts) is not int or not -_INT64 <= ts < _INT64:
            raise _bad(f"{where}[{i}][3]", "a 64-bit integer (the timestamp, ms)", ts)
        points.append((key, v, step, ts))
    return points


def dump_metrics(metrics: Sequence[Metric]) -> list[list[Any]]:
    return [[m.value if m.value - m.value == 0 else num(m.value), m.step, m.timestamp]
            for m in metrics]


def load_metrics(key: str, value: list[list[Any]]) -> list[Metric]:
    return [Metric(key, v if type(v) is float else load_float(v, "value"), s, t)
            for v, s, t in value]


def dump_metric_series(series: MetricSeries) -> dict[str, Any]:
    """A series as ``{"steps": [...], "values": [...], "total": n, "downsampled": b}``."""
    return {"steps": series.steps, "values": [v if v - v == 0 else num(v) for v in series.values],
            "total": series.total, "downsampled": series.downsampled}


def load_metric_series(d: Mapping[str, Any]) -> MetricSeries:
    return MetricSeries(tuple(d["steps"]),
                        tuple(v if type(v) is float else load_float(v, "values")
                              for v in d["values"]), d["total"], d["downsampled"])


def dump_run_keys(keys: RunKeys) -> dict[str, Any]:
    return {"metrics": keys.metrics, "params": keys.params, "tags": keys.tags}


def load_run_keys(d: Mapping[str, Any]) -> RunKeys:
    return RunKeys(tuple(d["metrics"]), tuple(d["params"]), tuple(d["tags"]))


def _num_dict(values: Mapping[str, float]) -> dict[str, float | str]:
    return {k: v if v - v == 0 else num(v) for k, v in values.items()}


# -- experiments and runs -------------------------------------------------------------------
def dump_experiment(e: Experiment) -> dict[str, Any]:
    return {"experiment_id": e.experiment_id, "name": e.name,
            "creation_time": e.creation_time, "tags": e.tags}


def load_experiment(d: Mapping[str, Any]) -> Experiment:
    return Experiment(d["experiment_id"], d["name"], d["creation_time"], d["tags"])


def _finite(values: Mapping[str, Any]) -> bool:
    """Whether every value is a finite number, in one C loop: a NaN or an infinity (or a
    string spelling one) makes the sum non-finite (or raise). A huge finite sum that
    overflows says False too, which only sends those values down the slower exact path."""
    try:
        return math.isfinite(sum(values.values()))
    except TypeError:
        return False


_STATUS = {s.value: s for s in RunStatus}


def dump_run(r: Run) -> Run | dict[str, Any]:
    """A run as JSON: the Run itself when its metrics are finite (orjson writes a
    dataclass as its fields, fast; a search answers thousands), else those fields with
    the non-finite metrics spelled out."""
    if _finite(r.metrics):
        return r
    return {"run_id": r.run_id, "experiment_id": r.experiment_id, "name": r.name,
            "status": r.status.value, "start_time": r.start_time, "end_time": r.end_time,
            "parent_run_id": r.parent_run_id, "params": r.params,
            "metrics": _num_dict(r.metrics), "tags": r.tags}


def load_run(d: Mapping[str, Any]) -> Run:
    metrics = d["metrics"]
    if not _finite(metrics):
        metrics = {k: v if type(v) is float else load_float(v, k) for k, v in metrics.items()}
    return Run(d["run_id"], d["experiment_id"], d["name"], _STATUS[d["status"]],
               d["start_time"], d["end_time"], d["parent_run_id"], d["params"], metrics,
               d["tags"])


# -- artifacts and datasets -----------------------------------------------------------------
def dump_artifact(a: Artifact) -> dict[str, Any]:
    return {"path": a.path, "digest": a.digest, "size": a.size}


def load_artifact(value: Any, where: str = "artifact") -> Artifact:
    d = _obj(value, where)
    return Artifact(required(d, "path", _str, where), required(d, "digest", _str, where),
                    required(d, "size", _int, where))


def dump_dataset(ds: Dataset) -> dict[str, Any]:
    return {"digest": ds.digest, "name": ds.name, "source": ds.source,
            "num_rows": ds.num_rows, "num_columns": ds.num_columns, "schema": ds.schema}


def load_dataset(value: Any, where: str = "dataset") -> Dataset:
    d = _obj(value, where)
    return Dataset(required(d, "digest", _str, where), required(d, "name", _str, where),
                   required(d, "source", _str, where), optional(d, "num_rows", _int, where=where),
                   optional(d, "num_columns", _int, where=where),
                   dict(optional(d, "schema", _obj, {}, where)))


# -- registry ---------------------------------------------------------------------------------
def dump_registered_model(m: RegisteredModel) -> dict[str, Any]:
    return {"name": m.name, "description": m.description, "creation_time": m.creation_time,
            "last_updated_time": m.last_updated_time, "latest_version": m.latest_version,
            "aliases": m.aliases, "tags": m.tags}


def load_registered_model(d: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(d["name"], d["description"], d["creation_time"],
                           d["last_updated_time"], d["latest_version"], d["aliases"], d["tags"])


def dump_model_version(v: ModelVersion) -> dict[str, Any]:
    return {"name": v.name, "version": v.version, "run_id": v.run_id,
            "artifact_path": v.artifact_path, "creation_time": v.creation_time,
            "description": v.description, "aliases": list(v.aliases), "tags": v.tags}


def load_model_version(d: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(d["name"], d["version"], d["run_id"], d["artifact_path"],
                        d["creation_time"], d["description"], tuple(d["aliases"]), d["tags"])


def dump_alias_event(e: AliasEvent) -> dict[str, Any]:
    return {"name": e.name, "alias": e.alias, "version": e.version,
            "previous_version": e.previous_version, "time": e.time, "actor": e.actor}


def load_alias_event(d: Mapping[str, Any]) -> AliasEvent:
    return AliasEvent(d["name"], d["alias"], d["version"], d["previous_version"], d["time"],
                      d["actor"])


def dump_lineage(lineage: Lineage) -> dict[str, Any]:
    return {"model_version": dump_model_version(lineage.model_version),
            "run": dump_run(lineage.run) if lineage.run else None,
            "parent_runs": [dump_run(r) for r in lineage.parent_runs],
            "datasets": [{"dataset": dump_dataset(d), "context": c}
                         for d, c in lineage.datasets],
            "git_commit": lineage.git_commit, "git_dirty": lineage.git_dirty}


# -- tokens and monitoring ------------------------------------------------------------------
def dump_token(t: ApiToken) -> dict[str, Any]:
    return {"name": t.name, "role": t.role.value, "creation_time": t.creation_time}


def load_token(d: Mapping[str, Any]) -> ApiToken:
    return ApiToken(d["name"], Role(d["role"]), d["creation_time"])


_REQUIRED_RECORD_FIELDS = tuple(f.name for f in fields(MonitoringRecord)
                                if f.default is MISSING and f.default_factory is MISSING)
_RECORD_FIELDS = frozenset(f.name for f in fields(MonitoringRecord))
_FIGURES = ("features", "quality", "metrics", "estimated")


def _any_num(value: Any) -> Any:
    return num(value) if type(value) is float else value


def _any_float(value: Any) -> Any:
    return _SPECIAL.get(value, value) if type(value) is str else value


def dump_monitoring(r: MonitoringRecord) -> dict[str, Any]:
    """A record as JSON. Its values are sent as they are (non-finite floats spelled out):
    the store that receives it checks them, with the same messages for every backend."""
    d = {name: getattr(r, name) for name in _RECORD_FIELDS}
    for name in ("dataset_drift", "prediction_drift"):
        d[name] = _any_num(d[name])
    for name in _FIGURES:
        if isinstance(d[name], Mapping):
            d[name] = {k: _any_num(v) for k, v in d[name].items()}
    for name in ("drifted", "alerts"):
        if isinstance(d[name], tuple):
            d[name] = list(d[name])
    return d


def load_monitoring(value: Any, where: str = "record") -> MonitoringRecord:
    """A record from JSON; the fields' values are checked by the store that keeps it."""
    d = _obj(value, where)
    for name in _REQUIRED_RECORD_FIELDS:
        if name not in d:
            raise InvalidInput(f"Missing field {f'{where}.{name}'!r} of the monitoring record.",
                               hint="Add it and send the request again.")
    kwargs = {k: v for k, v in d.items() if k in _RECORD_FIELDS}
    for name in ("dataset_drift", "prediction_drift"):
        if name in kwargs:
            kwargs[name] = _any_float(kwargs[name])
    for name in _FIGURES:
        if isinstance(kwargs.get(name), dict):
            kwargs[name] = {k: _any_float(v) for k, v in kwargs[name].items()}
    for name in ("drifted", "alerts"):
        if isinstance(kwargs.get(name), list):
            kwargs[name] = tuple(kwargs[name])
    return MonitoringRecord(**kwargs)
