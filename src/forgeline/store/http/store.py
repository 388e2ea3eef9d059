"""The Store contract over a team server's REST API (``forgeline server``).

Each method is one request (JSON through :mod:`~forgeline.store.http.wire`) over the
pooled connection of a :class:`~forgeline.store.http.transport.Transport`; the server
runs the same call on its store, and its errors come back as the same classes with the
same messages. So every caller (the tracking client, training, serving, monitoring,
the CLI) behaves as with a local store, and the conformance suite runs unchanged.
Metric points arrive already batched (the tracking client buffers them) and each batch
stays one request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from forgeline.config import team_token
from forgeline.entities import (
    AliasEvent,
    ApiToken,
    Artifact,
    Dataset,
    Experiment,
    Metric,
    MetricSeries,
    ModelVersion,
    MonitoringRecord,
    PagedList,
    RegisteredModel,
    Role,
    Run,
    RunKeys,
    RunStatus,
)
from forgeline.store.base import MetricPoint, Store
from forgeline.store.http import wire
from forgeline.store.http.transport import HttpOptions, Transport

__all__ = ["HttpStore"]


def _seg(value: str | int) -> str:
    """One path segment, percent-encoded."""
    return quote(str(value), safe="")


def _value(value: Any) -> Any:
    """An enum's value, anything else as given (the server checks it)."""
    return getattr(value, "value", value)


def _model(name: str) -> str:
    return f"/registered-models/{_seg(name)}"


def _version(name: str, version: int) -> str:
    return f"{_model(name)}/versions/{_seg(version)}"


class HttpStore(Store):
    """A store behind ``forgeline server`` at ``uri`` (``http://host:5000``).

    Args:
        uri: the server's base URL, ``http://`` or ``https://``.
        token: the bearer token; FORGELINE_TOKEN when None.
        options: timeouts and retries (:class:`HttpOptions`).
    """

    remote = True

    def __init__(self, uri: str, token: str | None = None,
                 options: HttpOptions | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.http = Transport(self.uri, token if token is not None else team_token(), options)

    def __repr__(self) -> str:
        return f"HttpStore({self.uri!r})"

    def _get(self, path: str, **params: Any) -> Any:
        return self.http.call("GET", path,
                              params={k: v for k, v in params.items() if v is not None})

    def _post(self, path: str, body: Any) -> Any:
        return self.http.call("POST", path, body)

    def _put(self, path: str, body: Any) -> Any:
        return self.http.call("PUT", path, body)

    def _delete(self, path: str) -> Any:
        return self.http.call("DELETE", path)

    # -- experiments ----------------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        return wire.load_experiment(self._post("/experiments",
                                               {"name": name, "tags": dict(tags or {})}))

    def get_experiment(self, experiment_id: str) -> Experiment:
        return wire.load_experiment(self._get(f"/experiments/{_seg(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        found = self._get("/experiments", name=name)["experiments"]
        return wire.load_experiment(found[0]) if found else None

    def list_experiments(self) -> list[Experiment]:
        return [wire.load_experiment(e) for e in self._get("/experiments")["experiments"]]

    # -- runs ---------------------------------------------------------------------------------
    def create_run(self, experiment_id: str, name: str, start_time: int,
                   tags: Mapping[str, str] | None = None,
                   parent_run_id: str | None = None) -> Run:
        return wire.load_run(self._post("/runs", {
            "experiment_id": experiment_id, "name": name, "start_time": start_time,
            "tags": dict(tags or {}), "parent_run_id": parent_run_id}))

    def get_run(self, run_id: str) -> Run:
        return wire.load_run(self._get(f"/runs/{_seg(run_id)}"))

    def set_run_status(self, run_id: str, status: RunStatus, end_time: int | None) -> Run:
        return wire.load_run(self.http.call("PATCH", f"/runs/{_seg(run_id)}", {
            "status": _value(status), "end_time": end_time}))

    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        self._post("/runs/heartbeat", {"run_ids": list(run_ids), "now": now})

    def mark_stale_runs(self, older_than: int) -> list[str]:
        return self._post("/runs/mark-stale", {"older_than": older_than})["run_ids"]

    def log_batch(self, run_id: str, metrics: Sequence[MetricPoint] = (),
                  params: Mapping[str, str] | None = None,
                  tags: Mapping[str, str] | None = None) -> None:
        self._post(f"/runs/{_seg(run_id)}/batch", {
            "metrics": wire.dump_metric_points(metrics), "params": dict(params or {}),
            "tags": dict(tags or {})})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        found = self._get(f"/runs/{_seg(run_id)}/metric-history", key=key)
        return wire.load_metrics(key, found["points"])

    def get_metric_series(self, run_id: str, key: str, max_points: int = 2000,
                          min_step: int | None = None, max_step: int | None = None
                          ) -> MetricSeries:
        return wire.load_metric_series(self._get(
            f"/runs/{_seg(run_id)}/metric-series", key=key, max_points=max_points,
            min_step=min_step, max_step=max_step))

    def search_runs(self, experiment_ids: Sequence[str], filter: str | None = None,
                    order_by: Sequence[str] | None = None, max_results: int = 1000,
                    page_token: str | None = None) -> PagedList:
        found = self._post("/runs/search", {
            "experiment_ids": list(experiment_ids), "filter": filter,
            "order_by": None if order_by is None else list(order_by),
            "max_results": max_results, "page_token": page_token})
        return PagedList([wire.load_run(r) for r in found["runs"]], found["next_page_token"])

    def list_run_keys(self, experiment_ids: Sequence[str]) -> RunKeys:
        return wire.load_run_keys(self._get("/run-keys", experiment_ids=list(experiment_ids)))

    # -- artifacts and datasets ---------------------------------------------------------------
    def record_artifacts(self, run_id: str, artifacts: Sequence[Artifact]) -> None:
        self._post(f"/runs/{_seg(run_id)}/artifacts",
                   {"artifacts": [wire.dump_artifact(a) for a in artifacts]})

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[Artifact]:
        found = self._get(f"/runs/{_seg(run_id)}/artifacts", prefix=prefix or None)
        return [wire.load_artifact(a) for a in found["artifacts"]]

    def log_dataset(self, run_id: str, dataset: Dataset, context: str) -> None:
        self._post(f"/runs/{_seg(run_id)}/datasets",
                   {"dataset": wire.dump_dataset(dataset), "context": context})

    def get_run_datasets(self, run_id: str) -> list[tuple[Dataset, str]]:
        found = self._get(f"/runs/{_seg(run_id)}/datasets")["datasets"]
        return [(wire.load_dataset(d["dataset"]), d["context"]) for d in found]

    # -- registry -----------------------------------------------------------------------------
    def create_registered_model(self, name: str, description: str = "") -> RegisteredModel:
        return wire.load_registered_model(self._post(
            "/registered-models", {"name": name, "description": description}))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return wire.load_registered_model(self._get(_model(name)))

    def list_registered_models(self) -> list[RegisteredModel]:
        found = self._get("/registered-models")["registered_models"]
        return [wire.load_registered_model(m) for m in found]

    def create_model_version(self, name: str, run_id: str | None, artifact_path: str,
                             description: str = "", tags: Mapping[str, str] | None = None,
                             aliases: Sequence[str] = (), *,
                             actor: str | None = None) -> ModelVersion:
        return wire.load_model_version(self._post(f"{_model(name)}/versions", {
            "run_id": run_id, "artifact_path": artifact_path, "description": description,
            "tags": dict(tags or {}), "aliases": list(aliases), "actor": actor}))

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return wire.load_model_version(self._get(_version(name, version)))

    def list_model_versions(self, name: str | None = None) -> list[ModelVersion]:
        found = self._get("/model-versions", name=name)["model_versions"]
        return [wire.load_model_version(v) for v in found]

    def delete_model_version(self, name: str, version: int) -> None:
        self._delete(_version(name, version))

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        self._put(f"{_version(name, version)}/tags/{_seg(key)}", {"value": value})

    # ``actor`` is who the server records when its auth is off; with auth on it records
    # the token's name whatever is sent.
    def set_alias(self, name: str, alias: str, version: int, *,
                  actor: str | None = None) -> int | None:
        return self._put(f"{_model(name)}/aliases/{_seg(alias)}",
                         {"version": version, "actor": actor})["previous"]

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> int:
        return self.http.call("DELETE", f"{_model(name)}/aliases/{_seg(alias)}",
                              params=None if actor is None else {"actor": actor})["version"]

    def get_alias_history(self, name: str, alias: str | None = None,
                          max_results: int = 100) -> list[AliasEvent]:
        found = self._get(f"{_model(name)}/alias-history", alias=alias,
                          max_results=max_results)
        return [wire.load_alias_event(e) for e in found["events"]]

    def get_alias(self, name: str, alias: str) -> int:
        return self._get(f"{_model(name)}/aliases/{_seg(alias)}")["version"]

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self._put(f"{_model(name)}/tags/{_seg(key)}", {"value": value})

    # -- monitoring history -------------------------------------------------------------------
    def record_monitoring(self, record: MonitoringRecord) -> None:
        self._post("/monitoring", wire.dump_monitoring(record))

    def get_monitoring_history(self, model: str, since: int | None = None,
                               until: int | None = None, limit: int = 10_000
                               ) -> list[MonitoringRecord]:
        found = self._get("/monitoring", model=model, since=since, until=until, limit=limit)
        return [wire.load_monitoring(r) for r in found["records"]]

    # -- tokens -------------------------------------------------------------------------------
    def create_token(self, name: str, role: Role, secret_sha256: str) -> ApiToken:
        return wire.load_token(self._post("/tokens", {
            "name": name, "role": _value(role), "secret_sha256": secret_sha256}))

    def find_token(self, secret_sha256: str) -> ApiToken | None:
        found = self._get("/tokens/lookup", secret_sha256=secret_sha256)["token"]
        return None if found is None else wire.load_token(found)

    def list_tokens(self) -> list[ApiToken]:
        return [wire.load_token(t) for t in self._get("/tokens")["tokens"]]

    def delete_token(self, name: str) -> None:
        self._delete(f"/tokens/{_seg(name)}")

    def close(self) -> None:
        self.http.close()
