"""MLflow-compatible routes, so the unmodified ``mlflow`` client can use the team server.

Point the client at the server (``MLFLOW_TRACKING_URI=http://host:port``, and
``MLFLOW_TRACKING_TOKEN`` when the server needs a token) and what it logs lands in the
Forgeline store: experiments, runs, params, metrics, tags, artifacts, MLflow 3 logged
models (as runs) and the model registry. What Forgeline wrote is visible to the client in
the same way. The mapping is described in :mod:`forgeline.server.mlflow.views`; what is
not supported answers MLflow's own error shape with a message that says so.

Modules: ``tracking`` (experiments, runs, metrics, search), ``logged_models``,
``registry`` (models, versions, aliases), ``artifacts`` (the proxied ``mlflow-artifacts``
routes), ``filters`` (MLflow's search grammar into Forgeline's), ``errors`` (the error
table), ``messages`` (reading a request) and ``views`` (ids, URIs and JSON).
"""

from __future__ import annotations

from fastapi import FastAPI

from forgeline.server.http import add_error_renderer
from forgeline.server.mlflow import artifacts, logged_models, registry, tracking
from forgeline.server.mlflow.errors import endpoint_not_found, render_error

__all__ = ["API_PREFIXES", "ARTIFACT_PREFIXES", "install"]

# The REST API under both of MLflow's prefixes (its UI calls the ajax one); MLflow 3 calls
# /api/3.0 only for what Forgeline does not map (traces, evaluation datasets, scorers...).
API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
_UNMAPPED_PREFIXES = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def install(app: FastAPI) -> None:
    """Mount the ``/api/2.0/mlflow``, ``/ajax-api/2.0/mlflow`` and ``mlflow-artifacts``
    routes on ``app`` (its ``state.store`` and ``state.artifacts`` are the stores)."""
    app.state.mlflow_heartbeats = tracking.Heartbeats()
    for prefix in API_PREFIXES:
        for router in (tracking.router, logged_models.router, registry.router,
                       artifacts.router):
            app.include_router(router, prefix=prefix, include_in_schema=False)
    for prefix in ARTIFACT_PREFIXES:
        app.include_router(artifacts.proxy_router, prefix=prefix, include_in_schema=False)
    # Artifact uploads stream to disk: they have the upload limit, not the JSON body limit.
    app.state.upload_prefixes = [*getattr(app.state, "upload_prefixes", []),
                                 *(f"{prefix}/artifacts/" for prefix in ARTIFACT_PREFIXES)]
    add_error_renderer(app, (*API_PREFIXES, *ARTIFACT_PREFIXES, *_UNMAPPED_PREFIXES),
                       render_error)
    # Anything else under MLflow's prefixes is ENDPOINT_NOT_FOUND in MLflow's shape, with a
    # message that says it is not supported (registered last: routes match in order).
    for prefix in (*API_PREFIXES, *ARTIFACT_PREFIXES, *_UNMAPPED_PREFIXES):
        app.add_api_route(f"{prefix}/{{path:path}}", endpoint_not_found, methods=_METHODS,
                          include_in_schema=False)
