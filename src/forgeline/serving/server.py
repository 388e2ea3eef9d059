"""Running the app under uvicorn (uvloop + httptools), in one process or several.

:func:`prepare` does everything that can fail because of the user before anything is
served (resolve and load the models, bind the port), so the CLI can report it in one
line; :meth:`Launch.run` then serves until SIGINT/SIGTERM, when uvicorn stops accepting,
finishes the requests in flight and runs the app's shutdown.

With ``workers > 1`` every worker builds its own app from ``FORGELINE_SERVE_CONFIG``
(uvicorn imports :func:`~forgeline.serving.app.create_app_from_env`) and the metrics go
through prometheus_client's multiprocess mode in a temporary folder.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forgeline.errors import InvalidInput
from forgeline.serving.config import ServeConfig
from forgeline.serving.metrics import MULTIPROC_ENV
from forgeline.serving.monitoring_task import describe

if TYPE_CHECKING:
    import uvicorn

    from forgeline.tracking.client import Client

__all__ = ["APP_FACTORY", "Launch", "prepare"]

APP_FACTORY = "forgeline.serving.app:create_app_from_env"


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
            if self.config.workers > 1:
                Multiprocess(self.uvicorn_config, sockets=[self.sock]).run()
            else:
                uvicorn.Server(self.uvicorn_config).run(sockets=[self.sock])
        finally:
            self.sock.close()
            for path in self._cleanup:
                shutil.rmtree(path, ignore_errors=True)


def prepare(config: ServeConfig, client: Client | None = None) -> Launch:
    """Load the models, bind the port and describe what will be served.

    Raises:
        ForgelineError: a model cannot be resolved or loaded, or the port cannot be bound.
    """
    import uvicorn

    from forgeline.serving.app import create_app
    from forgeline.serving.models import Deployment

    cleanup: list[str] = []
    common: dict[str, Any] = dict(
        loop="uvloop", http="httptools", lifespan="on", log_config=_log_config(),
        access_log=config.access_log, timeout_graceful_shutdown=config.graceful_timeout_s or None,
        server_header=False)
    if config.workers > 1:
        deployment = Deployment(config, client)  # fail here, not in every worker
        models = dict(deployment.models)
        del deployment
        if not os.environ.get(MULTIPROC_ENV):
            os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="forgeline-metrics-")
            cleanup.append(os.environ[MULTIPROC_ENV])
        os.environ.update(config.to_env())
        uv_config = uvicorn.Config(APP_FACTORY, factory=True, workers=config.workers, **common)
    else:
        app = create_app(config, client=client, own_process=True)
        models = dict(app.state.forgeline.deployment.models)
        uv_config = uvicorn.Config(app, **common)
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{host}:{port}"
    return Launch(config, uv_config, sock, url, _summary(config, models, url), cleanup)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound as uvicorn binds it (workers inherit it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InvalidInput(f"Cannot listen on {host}:{port}: {e.strerror or e}.",
                           hint="Choose another --port or --host.") from None
    sock.set_inheritable(True)
    return sock


def _summary(config: ServeConfig, models: dict[str, Any], url: str) -> list[tuple[str, str]]:
    primary = models[config.model]
    runtime = getattr(primary.runtime, "detail", "") or primary.runtime.name
    rows = [("model", f"{config.model} -> {primary.label}"), ("runtime", runtime)]
    if config.canary:
        canary = models[config.canary]
        rows.append(("canary", f"{config.canary} -> {canary.label}, {config.canary_percent:g}% "
                               "of requests"))
    if config.shadow:
        rows.append(("shadow", f"{config.shadow} -> {models[config.shadow].label}"))
    if config.watch:
        rows.append(("watch", f"every {config.watch_interval_s:g}s"))
    monitoring = describe(config)
    if monitoring:
        rows.append(("monitor", monitoring))
    rows += [("url", url), ("predict", f"POST {url}/predict"),
             ("oip v2", f"{url}/v2/models/{primary.name}"), ("docs", f"{url}/docs"),
             ("metrics", f"{url}/metrics"), ("workers", str(config.workers)),
             ("batching", f"up to {config.max_batch_size} rows, {config.max_wait_ms:g} ms wait"),
             ("auth", "bearer token" if config.token else "none")]
    return rows


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus Forgeline's serving logger (swaps, shadow failures)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["forgeline"] = {"handlers": ["default"], "level": "INFO",
                                      "propagate": False}
    return config
