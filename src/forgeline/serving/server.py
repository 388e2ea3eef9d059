"""Running an app under uvicorn (uvloop + httptools), in one process or several.

:func:`prepare` does everything that can fail because of the user before anything is
served (resolve and load the models, bind the port), so an interface can report it in
one line; :meth:`Launch.run` then serves until SIGINT/SIGTERM, when uvicorn stops
accepting, finishes the requests in flight and runs the app's shutdown.

The caller names the app: a factory to call in this process, and the import string of
its twin that builds the same app from ``FORGELINE_SERVE_CONFIG``. With several workers
uvicorn imports that string in every worker (:data:`APP_FACTORY` for the plain server)
and the metrics go through prometheus_client's multiprocess mode in a temporary folder.

With a gRPC port (``listener.grpc_port``) the app serves OIP v2 over gRPC too, from its
start-up (:mod:`forgeline.serving.oip_grpc`); :func:`prepare` checks first that grpcio is
installed and that the port is free, and turns port 0 into a free port's number, so that
the summary shows it and every worker listens on the same one.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from forgeline.errors import InvalidInput
from forgeline.serving.config import ServeConfig
from forgeline.serving.metrics import MULTIPROC_ENV

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from forgeline.tracking.client import Client

__all__ = ["APP_FACTORY", "AppFactory", "Launch", "prepare"]

APP_FACTORY = "forgeline.serving.app:create_app_from_env"  # the plain server, no jobs


class AppFactory(Protocol):
    """Builds the app for ``config`` (like :func:`forgeline.serving.app.create_app`)."""

    def __call__(self, config: ServeConfig, *, client: Client | None = None,
                 own_process: bool = False) -> FastAPI: ...


@dataclass
class Launch:
    """A server ready to run: models loaded, port bound."""

    config: ServeConfig
    uvicorn_config: uvicorn.Config
    sock: socket.socket
    url: str
    summary: list[tuple[str, str]] = field(default_factory=list)
    _cleanup: list[str] = field(default_factory=list, repr=False)

    def run(self) -> None:
        """Serve until stopped by SIGINT or SIGTERM (graceful: requests in flight finish)."""
        import uvicorn
        from uvicorn.supervisors import Multiprocess

        try:
            if self.config.listener.workers > 1:
                Multiprocess(self.uvicorn_config, sockets=[self.sock]).run()
            else:
                uvicorn.Server(self.uvicorn_config).run(sockets=[self.sock])
        finally:
            self.sock.close()
            for path in self._cleanup:
                shutil.rmtree(path, ignore_errors=True)


def prepare(config: ServeConfig, client: Client | None = None, *, app_factory: AppFactory,
            app_import: str) -> Launch:
    """Load the models, bind the port and describe what will be served.

    Args:
        config: what to serve and how.
        client: the registry; ``Client(config.store_uri)`` when None.
        app_factory: builds the app in this process (one worker).
        app_import: ``module:function``, a function without arguments that builds the
            same app from ``FORGELINE_SERVE_CONFIG``; each worker imports and calls it
            when there are several.

    Raises:
        ForgelineError: a model cannot be resolved or loaded, or a port cannot be bound;
            ``InvalidSetting`` naming ``listener.grpc_port`` when grpcio is missing.
    """
    probe = None  # holds the gRPC port until the HTTP one is bound: they must differ
    if config.listener.grpc_port is not None:
        config, probe = _reserve_grpc_port(config)
    try:
        return _prepare(config, client, app_factory, app_import)
    finally:
        if probe is not None:
            probe.close()


def _prepare(config: ServeConfig, client: Client | None, app_factory: AppFactory,
             app_import: str) -> Launch:
    import uvicorn

    from forgeline.serving.models import Deployment

    listener = config.listener
    cleanup: list[str] = []
    common: dict[str, Any] = dict(
        loop="uvloop", http="httptools", lifespan="on", log_config=_log_config(),
        access_log=listener.access_log,
        timeout_graceful_shutdown=listener.graceful_timeout_s or None, server_header=False)
    if listener.workers > 1:
        deployment = Deployment(config, client)  # fail here, not in every worker
        models = dict(deployment.models)
        del deployment
        if not os.environ.get(MULTIPROC_ENV):
            os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="forgeline-metrics-")
            cleanup.append(os.environ[MULTIPROC_ENV])
        os.environ.update(config.to_env())
        uv_config = uvicorn.Config(app_import, factory=True, workers=listener.workers,
                                   **common)
    else:
        app = app_factory(config, client=client, own_process=True)
        models = dict(app.state.forgeline.deployment.models)
        uv_config = uvicorn.Config(app, **common)
    sock = _bind(listener.host, listener.port)
    port = sock.getsockname()[1]
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    url = f"http://{host}:{port}"
    return Launch(config, uv_config, sock, url, _summary(config, models, url), cleanup)


def _bind(host: str, port: int, what: str = "") -> socket.socket:
    """The listening socket, bound as uvicorn binds it (workers inherit it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InvalidInput(f"Cannot listen{what} on {host}:{port}: {e.strerror or e}.",
                           hint="Choose another port or host.") from None
    sock.set_inheritable(True)
    return sock


def _reserve_grpc_port(config: ServeConfig) -> tuple[ServeConfig, socket.socket]:
    """``config`` with its gRPC port checked free (0: a free port chosen), grpcio there,
    and a socket bound to that port.

    The caller closes the socket once the HTTP port is bound: the app binds the gRPC port
    at its start-up, moments later (each worker, with SO_REUSEPORT, when there are
    several).

    Raises:
        InvalidSetting: grpcio or protobuf is missing.
        InvalidInput: the port cannot be bound.
    """
    from forgeline.serving import oip_grpc

    oip_grpc.load()
    listener = config.listener
    probe = _bind(listener.host, int(listener.grpc_port or 0), " for gRPC")
    port = probe.getsockname()[1]
    listener = dataclasses.replace(listener, grpc_port=port)
    return dataclasses.replace(config, listener=listener), probe


def _summary(config: ServeConfig, models: dict[str, Any], url: str) -> list[tuple[str, str]]:
    primary = models[config.model]
    runtime = getattr(primary.runtime, "detail", "") or primary.runtime.name
    rows = [("model", f"{config.model} -> {primary.label}"), ("runtime", runtime)]
    if primary.llm_probe:
        rows.append(("llm", primary.llm_probe))
    if config.canary:
        canary = models[config.canary]
        rows.append(("canary", f"{config.canary} -> {canary.label}, {config.canary_percent:g}% "
                               "of requests"))
    if config.shadow:
        rows.append(("shadow", f"{config.shadow} -> {models[config.shadow].label}"))
    if config.watch:
        rows.append(("watch", f"every {config.watch_interval_s:g}s"))
    schedule = config.monitor.describe()
    if schedule:
        rows.append(("monitor", schedule))
    batching = config.batching
    rows += [("url", url), ("predict", f"POST {url}/predict"),
             ("oip v2", f"{url}/v2/models/{primary.name}")]
    if config.listener.grpc_port is not None:
        host = config.listener.host
        host = f"[{host}]" if ":" in host else host
        rows.append(("grpc", f"{host}:{config.listener.grpc_port} (OIP v2, "
                             "inference.GRPCInferenceService)"))
    rows += [("docs", f"{url}/docs"),
             ("metrics", f"{url}/metrics"), ("workers", str(config.listener.workers)),
             ("batching", f"up to {batching.max_batch_size} rows, "
                          f"{batching.max_wait_ms:g} ms wait"),
             ("auth", "bearer token" if config.listener.token else "none")]
    return rows


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus Forgeline's serving logger (swaps, shadow failures)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["forgeline"] = {"handlers": ["default"], "level": "INFO",
                                      "propagate": False}
    return config
