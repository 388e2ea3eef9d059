"""The team server's app: the REST API over a store and its artifacts, access control,
the MLflow-compatible routes and the web UI (:mod:`forgeline.server.ui`).

:func:`create_app` builds it around a Store and an ArtifactStore (a test or an embedding
program passes its own); :func:`create_app_from_env` is the factory each uvicorn worker of
``forgeline server`` calls, reading the settings the command handed over
(:class:`forgeline.config.ServerSettings`).

The routes under ``/api/forgeline/v1/`` are in :mod:`forgeline.server.api`; errors,
bodies and limits in :mod:`forgeline.server.http`; roles in :mod:`forgeline.server.auth`.
"""

from __future__ import annotations

from fastapi import FastAPI

from forgeline.config import SERVER_MAX_BODY_BYTES, ServerSettings
from forgeline.server import mlflow, ui
from forgeline.server.api import admin, registry, tracking
from forgeline.server.api import artifacts as artifact_routes
from forgeline.server.http import BodyLimit, install_errors
from forgeline.store import ArtifactStore, Store, get_store, open_artifact_store
from forgeline.store.http.wire import API_PREFIX
from forgeline.version import __version__

__all__ = ["create_app", "create_app_from_env"]


def create_app(store: Store, artifacts: ArtifactStore, *, auth: bool,
               max_body_bytes: int = SERVER_MAX_BODY_BYTES,
               max_upload_bytes: int | None = None) -> FastAPI:
    """The team server over ``store`` and ``artifacts``.

    Args:
        store: where everything is recorded (``app.state.store``).
        artifacts: where artifact bytes live (``app.state.artifacts``).
        auth: require bearer tokens with roles (``app.state.auth``); see
            :mod:`forgeline.server.auth`.
        max_body_bytes: larger JSON request bodies are refused with 413.
        max_upload_bytes: the limit on one artifact upload (None: none; uploads are
            streamed to disk, never held in memory).
    """
    app = FastAPI(title="Forgeline team server", version=__version__,
                  summary="Experiments, runs, artifacts, the model registry and monitoring "
                          "history of a Forgeline store, for a team.")
    app.state.store = store
    app.state.artifacts = artifacts
    app.state.auth = auth
    app.state.upload_prefixes = [API_PREFIX + artifact_routes.UPLOAD_ROUTE]
    for module in (admin, tracking, registry, artifact_routes):
        app.include_router(module.router, prefix=API_PREFIX)
    install_errors(app)
    app.add_middleware(BodyLimit, state=app.state, limit=max_body_bytes,
                       upload_limit=max_upload_bytes)
    mlflow.install(app)
    ui.install(app)
    return app


def create_app_from_env() -> FastAPI:
    """The app of one ``forgeline server`` worker, from ``FORGELINE_SERVER_CONFIG``."""
    settings = ServerSettings.from_env()
    return create_app(get_store(settings.store_uri),
                      open_artifact_store(settings.artifact_root),
                      auth=settings.auth, max_body_bytes=settings.max_body_bytes)
