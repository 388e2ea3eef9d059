"""``forgeline serve MODEL``: the real-time HTTP API of a registered model.

``--monitor-every 5m`` also runs the monitor on the prediction log in the background and
exports its gauges on ``/metrics`` (see :mod:`forgeline.serving.monitoring_task`).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from forgeline.cli.output import console, key_value_table
from forgeline.cli.state import get_client
from forgeline.config import ENV_SERVE_TOKEN
from forgeline.errors import InvalidInput

__all__ = ["register"]


def serve_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL",
                                help="name@alias, name/N, name (latest) or a package folder."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port (0: any free one)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    max_batch_size: int = typer.Option(64, "--max-batch-size", min=1,
                                       help="Most rows per model call (micro-batching)."),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", min=0.0,
                                      help="At most how long a request waits for others to batch "
                                           "with (only while more are arriving)."),
    max_body_bytes: int = typer.Option(1 << 20, "--max-body-bytes", min=1,
                                       help="Larger request bodies get 413."),
    shadow: str | None = typer.Option(None, "--shadow", metavar="MODEL",
                                      help="Also score every request with this model, in the "
                                           "background (e.g. fraud@challenger)."),
    canary: str | None = typer.Option(None, "--canary", metavar="MODEL:PERCENT",
                                      help="Answer PERCENT% of requests with this model, by "
                                           "request id (e.g. fraud@challenger:10)."),
    watch: bool = typer.Option(False, "--watch", help="Swap in the new version when an alias "
                               "served moves in the registry."),
    watch_interval: float = typer.Option(10.0, "--watch-interval", metavar="SECONDS", min=0.01,
                                         help="How often --watch polls the registry."),
    token: str | None = typer.Option(None, "--token", envvar=ENV_SERVE_TOKEN, show_envvar=True,
                                     help="Require Authorization: Bearer TOKEN on inference "
                                          "routes."),
    runtime: str = typer.Option("auto", "--runtime", help="auto, native or onnx."),
    graceful_timeout: float = typer.Option(30.0, "--graceful-timeout", metavar="SECONDS",
                                           min=0.0, help="How long shutdown waits for requests "
                                                         "in flight."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
    log_predictions: bool = typer.Option(
        True, "--log/--no-log", help="Keep every prediction in the prediction log that "
                                     "monitoring and retraining read."),
    monitor_every: str | None = typer.Option(
        None, "--monitor-every", metavar="DURATION",
        help="Monitor the prediction log every DURATION (30s, 5m, 1h) in the background; "
             "its gauges go to /metrics."),
    monitor_window: str | None = typer.Option(
        None, "--monitor-window", metavar="DURATION",
        help="Monitor the predictions of the last DURATION (default 24h)."),
    monitor_last: int | None = typer.Option(
        None, "--monitor-last", metavar="N", min=1,
        help="Monitor the last N predictions (of the window, when both are given)."),
    rules: list[str] | None = typer.Option(
        None, "--rule", metavar="RULE",
        help="Alert rule, e.g. 'dataset_drift > 0.3' (repeatable)."),
    webhook: str | None = typer.Option(
        None, "--webhook", metavar="URL",
        help="POST the alert payload here when a rule starts firing."),
) -> None:
    """Serve a model over HTTP: /predict, Open Inference Protocol v2, /metrics, /docs."""
    from forgeline.serving.config import ServeConfig, parse_canary
    from forgeline.serving.server import prepare
    from forgeline.util.time import parse_duration

    canary_ref, canary_percent = parse_canary(canary) if canary else (None, 0.0)
    client = get_client(ctx)
    config = ServeConfig(
        model=model, store_uri=client.store.uri,
        cache_dir=str((Path(client.settings.home) / "models").absolute()),
        host=host, port=port, workers=workers, max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms, max_body_bytes=max_body_bytes, shadow=shadow,
        canary=canary_ref, canary_percent=canary_percent, watch=watch,
        watch_interval_s=watch_interval, token=token or None, runtime=runtime,
        graceful_timeout_s=graceful_timeout, access_log=access_log,
        log_predictions=log_predictions,
        monitor_every_s=None if monitor_every is None else parse_duration(monitor_every,
                                                                          "--monitor-every"),
        monitor_window_s=None if monitor_window is None else parse_duration(
            monitor_window, "--monitor-window"),
        monitor_last=monitor_last, monitor_rules=tuple(rules or ()), monitor_webhook=webhook)
    if config.monitor_every_s is not None and Path(model).expanduser().is_dir():
        raise InvalidInput("--monitor-every reads the prediction log, which is kept for "
                           "registered models only, not for a package folder.",
                           hint="Serve name@alias or name/N, or use forgeline monitor "
                                "MODEL --current FILE.")
    launch = prepare(config, client)
    console().print(key_value_table(launch.summary, title="Forgeline serving"))
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server stops: no error
        launch.run()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
