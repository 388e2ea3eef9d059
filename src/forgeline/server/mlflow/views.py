"""How Forgeline's records look to the MLflow client: ids, URIs and JSON messages.

MLflow's messages are protobuf messages sent as JSON; the client parses them with unknown
fields ignored, int64 fields as numbers and enums by name, so plain dicts are enough.

The mapping, one place for it:

- Experiments are Forgeline experiments. MLflow's "Default" experiment (id ``"0"``, what a
  client that never sets one sends) is the Forgeline experiment named ``Default``,
  created the first time it is needed; it answers under its own id afterwards.
- Runs are Forgeline runs. The run name is the run's name (shown as the tag
  ``mlflow.runName``), the parent is ``parent_run_id`` (shown as ``mlflow.parentRunId``).
  A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment>/<run>/artifacts`` so the
  client sends and fetches the bytes through the server.
- An MLflow 3 logged model is a Forgeline run too: a child of its source run (when it has
  one) in the same experiment, tagged ``forgeline.mlflow.logged_model``, its files the
  run's artifacts, its params the run's params; its status is the run's (RUNNING =
  PENDING, FINISHED = READY, FAILED = UPLOAD_FAILED), and its id is ``m-<run id>``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from forgeline.entities import Experiment, Metric, ModelVersion, RegisteredModel, Run, RunStatus
from forgeline.errors import InvalidInput, NotFound
from forgeline.store.base import Store

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_EXPERIMENT_NAME",
    "LOGGED_MODEL_TAG",
    "MODEL_TYPE_TAG",
    "PARENT_TAG",
    "RUN_NAME_TAG",
    "USER_TAG",
    "artifact_uri",
    "experiment_id",
    "experiment_json",
    "is_logged_model",
    "logged_model_json",
    "logged_model_run",
    "metric_json",
    "metric_value",
    "model_id",
    "model_version_json",
    "model_version_source",
    "registered_model_json",
    "run_info_json",
    "run_json",
    "tag_list",
]

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
LOGGED_MODEL_TAG = "forgeline.mlflow.logged_model"
MODEL_TYPE_TAG = "forgeline.mlflow.model_type"
_MODEL_PREFIX = "m-"
_HIDDEN_MODEL_TAGS = frozenset({LOGGED_MODEL_TAG, MODEL_TYPE_TAG})
_MODEL_STATUS = {RunStatus.RUNNING: "LOGGED_MODEL_PENDING",
                 RunStatus.FINISHED: "LOGGED_MODEL_READY"}
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


# -- ids and URIs ---------------------------------------------------------------------------
def experiment_id(store: Store, given: object) -> str:
    """The Forgeline id of an MLflow experiment id; ``"0"`` is the Default experiment."""
    if not isinstance(given, str) or not given:
        raise InvalidInput("Missing value for required parameter 'experiment_id'.")
    if given == DEFAULT_EXPERIMENT_ID:
        return store.get_or_create_experiment(DEFAULT_EXPERIMENT_NAME).experiment_id
    return given


def artifact_uri(run: Run) -> str:
    return f"mlflow-artifacts:/{run.experiment_id}/{run.run_id}/artifacts"


def model_id(run_id: str) -> str:
    return _MODEL_PREFIX + run_id


def is_logged_model(run: Run) -> bool:
    return LOGGED_MODEL_TAG in run.tags


def logged_model_run(store: Store, given: object) -> Run:
    """The run that holds the logged model ``m-<run id>``; NotFound for any other id."""
    if isinstance(given, str) and given.startswith(_MODEL_PREFIX):
        try:
            run = store.get_run(given[len(_MODEL_PREFIX):])
        except NotFound:
            pass
        else:
            if is_logged_model(run):
                return run
    raise NotFound(f"Logged model {given!r} not found.")


# -- values ------------------------------------------------------------------------------------
def metric_value(value: float) -> float | str:
    """Protobuf's JSON writes NaN and the infinities as strings; the client reads them so."""
    return value if math.isfinite(value) else _NON_FINITE[repr(value)]


def tag_list(tags: Mapping[str, str], skip: Iterable[str] = ()) -> list[dict[str, str]]:
    hidden = set(skip)
    return [{"key": k, "value": v} for k, v in tags.items() if k not in hidden]


def metric_json(metric: Metric, run_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"key": metric.key, "value": metric_value(metric.value),
                            "timestamp": metric.timestamp, "step": metric.step}
    if run_id is not None:
        body["run_id"] = run_id
    return body


# -- messages -----------------------------------------------------------------------------------
def experiment_json(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "artifact_location": f"mlflow-artifacts:/{experiment.experiment_id}",
        "lifecycle_stage": "active",
        "creation_time": experiment.creation_time,
        "last_update_time": experiment.creation_time,
        "tags": tag_list(experiment.tags),
    }


def run_info_json(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "run_name": run.name,
        "experiment_id": run.experiment_id,
        "user_id": run.tags.get(USER_TAG, ""),
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": artifact_uri(run),
        "lifecycle_stage": "active",
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_json(run: Run) -> dict[str, Any]:
    """A run as MLflow shows it. The store keeps each metric's latest value only, so its
    step and timestamp here are 0 (get_metric_history has them)."""
    tags = dict(run.tags)
    tags[RUN_NAME_TAG] = run.name
    if run.parent_run_id:
        tags[PARENT_TAG] = run.parent_run_id
    return {
        "info": run_info_json(run),
        "data": {
            "metrics": [{"key": k, "value": metric_value(v), "timestamp": 0, "step": 0}
                        for k, v in run.metrics.items()],
            "params": [{"key": k, "value": v} for k, v in run.params.items()],
            "tags": tag_list(tags),
        },
        "inputs": {},
    }


def logged_model_json(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model_id(run.run_id),
        "experiment_id": run.experiment_id,
        "name": run.name,
        "creation_timestamp_ms": run.start_time,
        "last_updated_timestamp_ms": run.end_time or run.start_time,
        "artifact_uri": artifact_uri(run),
        "status": _MODEL_STATUS.get(run.status, "LOGGED_MODEL_UPLOAD_FAILED"),
        "tags": tag_list(run.tags, skip=_HIDDEN_MODEL_TAGS),
    }
    if run.tags.get(MODEL_TYPE_TAG):
        info["model_type"] = run.tags[MODEL_TYPE_TAG]
    if run.parent_run_id:
        info["source_run_id"] = run.parent_run_id
    return {"info": info, "data": {
        "params": [{"key": k, "value": v} for k, v in run.params.items()],
        "metrics": [{"key": k, "value": metric_value(v), "timestamp": 0, "step": 0,
                     "model_id": model_id(run.run_id)} for k, v in run.metrics.items()],
    }}


def model_version_source(version: ModelVersion) -> str:
    """What MLflow sent as the source is kept as the artifact path (``models:/m-...``,
    ``runs:/...``, ``mlflow-artifacts:/...``); a version Forgeline registered is a path in
    its run, which MLflow writes as a ``runs:/`` URI."""
    if ":/" in version.artifact_path or version.run_id is None:
        return version.artifact_path
    return f"runs:/{version.run_id}/{version.artifact_path}"


def model_version_json(version: ModelVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": version.creation_time,
        "last_updated_timestamp": version.creation_time,
        "current_stage": "None",
        "description": version.description,
        "source": model_version_source(version),
        "status": "READY",
        "tags": tag_list(version.tags),
        "aliases": list(version.aliases),
    }
    if version.run_id is not None:
        body["run_id"] = version.run_id
    if version.artifact_path.startswith("models:/" + _MODEL_PREFIX):
        body["model_id"] = version.artifact_path[len("models:/"):]
    return body


def registered_model_json(model: RegisteredModel,
                          latest: ModelVersion | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": model.creation_time,
        "last_updated_timestamp": model.last_updated_time,
        "description": model.description,
        "tags": tag_list(model.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in model.aliases.items()],
    }
    if latest is not None:
        body["latest_versions"] = [model_version_json(latest)]
    return body
