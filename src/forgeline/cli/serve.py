"""``forgeline serve MODEL``: the real-time HTTP API of a registered model.

``--grpc-port PORT`` also serves the Open Inference Protocol v2 over gRPC, in the same
process (needs the ``grpc`` extra).

``--monitor-every 5m`` also runs the monitor on the prediction log in the background and
exports its gauges on ``/metrics`` (see :mod:`forgeline.workflows.serve`).

The defaults and ranges of the options are those of the settings' value objects
(:mod:`forgeline.serving.config`); this module only names them as flags, and names the
flag when a value is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any

import typer

from forgeline.cli.output import console, key_value_table
from forgeline.cli.state import get_client
from forgeline.config import ENV_SERVE_TOKEN
from forgeline.serving.config import (
    DEFAULT_WINDOW_S,
    LIMITS,
    RUNTIMES,
    Batching,
    InvalidSetting,
    Listener,
    MonitorSchedule,
    ServeConfig,
)
from forgeline.util.time import format_duration

__all__ = ["register"]

# The flag that sets each setting (by its path in ServeConfig), for messages.
FLAGS = {
    "listener.host": "--host", "listener.port": "--port", "listener.workers": "--workers",
    "listener.max_body_bytes": "--max-body-bytes",
    "listener.graceful_timeout_s": "--graceful-timeout", "listener.access_log": "--access-log",
    "listener.token": "--token", "listener.grpc_port": "--grpc-port",
    "batching.max_batch_size": "--max-batch-size",
    "batching.max_wait_ms": "--max-wait-ms", "monitor.every_s": "--monitor-every",
    "monitor.window_s": "--monitor-window", "monitor.last": "--monitor-last",
    "monitor.rules": "--rule", "monitor.webhook": "--webhook",
    "watch_interval_s": "--watch-interval", "canary_percent": "the --canary percentage",
    "log_predictions=False": "--no-log", "manifest_sha256": "--expect-manifest",
    "watch": "--watch", "llm_timeout_s": "--llm-timeout",
}


def _default(kind: type, name: str) -> Any:
    """The default of field ``name`` of the dataclass ``kind``."""
    return next(f.default for f in dataclasses.fields(kind) if f.name == name)


def _low(setting: str) -> Any:
    return LIMITS[setting][0]


def serve_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., metavar="MODEL",
                                help="name@alias, name/N, name (latest) or a package folder."),
    host: str = typer.Option(_default(Listener, "host"), "--host",
                             help="Interface to listen on."),
    port: int = typer.Option(_default(Listener, "port"), "--port", min=_low("listener.port"),
                             max=LIMITS["listener.port"][1], help="Port (0: any free one)."),
    grpc_port: int | None = typer.Option(
        _default(Listener, "grpc_port"), "--grpc-port", metavar="PORT",
        min=_low("listener.grpc_port"), max=LIMITS["listener.grpc_port"][1],
        help="Also serve the Open Inference Protocol v2 over gRPC on this port (0: any free "
             "one), sharing the micro-batches; needs forgeline[grpc]."),
    workers: int = typer.Option(_default(Listener, "workers"), "--workers",
                                min=_low("listener.workers"), help="Worker processes."),
    max_batch_size: int = typer.Option(_default(Batching, "max_batch_size"), "--max-batch-size",
                                       min=_low("batching.max_batch_size"),
                                       help="Most rows per model call (micro-batching)."),
    max_wait_ms: float = typer.Option(_default(Batching, "max_wait_ms"), "--max-wait-ms",
                                      min=_low("batching.max_wait_ms"),
                                      help="At most how long a request waits for others to batch "
                                           "with (only while more are arriving)."),
    max_body_bytes: int = typer.Option(_default(Listener, "max_body_bytes"), "--max-body-bytes",
                                       min=_low("listener.max_body_bytes"),
                                       help="Larger request bodies get 413."),
    shadow: str | None = typer.Option(None, "--shadow", metavar="MODEL",
                                      help="Also score every request with this model, in the "
                                           "background (e.g. fraud@challenger)."),
    canary: str | None = typer.Option(None, "--canary", metavar="MODEL:PERCENT",
                                      help="Answer PERCENT% of requests with this model, by "
                                           "request id (e.g. fraud@challenger:10)."),
    watch: bool = typer.Option(_default(ServeConfig, "watch"), "--watch",
                               help="Swap in the new version when an alias served moves in "
                                    "the registry."),
    watch_interval: float = typer.Option(_default(ServeConfig, "watch_interval_s"),
                                         "--watch-interval", metavar="SECONDS",
                                         min=_low("watch_interval_s"),
                                         help="How often --watch polls the registry."),
    token: str | None = typer.Option(None, "--token", envvar=ENV_SERVE_TOKEN, show_envvar=True,
                                     help="Require Authorization: Bearer TOKEN on inference "
                                          "routes."),
    runtime: str = typer.Option(_default(ServeConfig, "runtime"), "--runtime",
                                help=f"{', '.join(RUNTIMES[:-1])} or {RUNTIMES[-1]}."),
    graceful_timeout: float = typer.Option(_default(Listener, "graceful_timeout_s"),
                                           "--graceful-timeout", metavar="SECONDS",
                                           min=_low("listener.graceful_timeout_s"),
                                           help="How long shutdown waits for requests in "
                                                "flight."),
    access_log: bool = typer.Option(_default(Listener, "access_log"), "--access-log",
                                    help="Log every request."),
    log_predictions: bool = typer.Option(
        _default(ServeConfig, "log_predictions"), "--log/--no-log",
        help="Keep every prediction in the prediction log that monitoring and retraining "
             "read."),
    monitor_every: str | None = typer.Option(
        None, "--monitor-every", metavar="DURATION",
        help="Monitor the prediction log every DURATION (30s, 5m, 1h) in the background; "
             "its gauges go to /metrics."),
    monitor_window: str | None = typer.Option(
        None, "--monitor-window", metavar="DURATION",
        help="Monitor the predictions of the last DURATION (default "
             f"{format_duration(DEFAULT_WINDOW_S)})."),
    monitor_last: int | None = typer.Option(
        None, "--monitor-last", metavar="N", min=_low("monitor.last"),
        help="Monitor the last N predictions (of the window, when both are given)."),
    rules: list[str] | None = typer.Option(
        None, "--rule", metavar="RULE",
        help="Alert rule, e.g. 'dataset_drift > 0.3' (repeatable)."),
    webhook: str | None = typer.Option(
        None, "--webhook", metavar="URL",
        help="POST the alert payload here when a rule starts firing."),
    expect_manifest: str | None = typer.Option(
        None, "--expect-manifest", metavar="SHA256",
        help="Refuse to start unless the model package's MANIFEST.json has this sha256 "
             "(forgeline deploy k8s pins it)."),
    llm_url: str | None = typer.Option(
        None, "--llm-url", metavar="URL",
        help="Where a model's LLM features ask their LLM (default: FORGELINE_LLM_URL, else "
             "the URL it was trained with)."),
    llm_timeout: float | None = typer.Option(
        None, "--llm-timeout", metavar="SECONDS", min=_low("llm_timeout_s"),
        help="How long a prediction waits for its LLM answers before failing with 504 "
             "(default: the training spec's llm.timeout_s)."),
) -> None:
    """Serve a model over HTTP: /predict, Open Inference Protocol v2, /metrics, /docs (and
    OIP v2 over gRPC with --grpc-port)."""
    from forgeline.serving.config import parse_canary
    from forgeline.util.time import parse_duration
    from forgeline.workflows.serve import prepare

    canary_ref, canary_percent = parse_canary(canary) if canary else (None, 0.0)
    client = get_client(ctx)
    try:
        config = ServeConfig(
            model=model, store_uri=client.store.uri,
            cache_dir=str((Path(client.settings.home) / "models").absolute()),
            listener=Listener(host=host, port=port, workers=workers,
                              max_body_bytes=max_body_bytes,
                              graceful_timeout_s=graceful_timeout, access_log=access_log,
                              token=token or None, grpc_port=grpc_port),
            batching=Batching(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms),
            monitor=MonitorSchedule(
                every_s=None if monitor_every is None else parse_duration(
                    monitor_every, FLAGS["monitor.every_s"]),
                window_s=None if monitor_window is None else parse_duration(
                    monitor_window, FLAGS["monitor.window_s"]),
                last=monitor_last, rules=tuple(rules or ()), webhook=webhook),
            shadow=shadow, canary=canary_ref, canary_percent=canary_percent, watch=watch,
            watch_interval_s=watch_interval, runtime=runtime, log_predictions=log_predictions,
            manifest_sha256=expect_manifest, llm_url=llm_url, llm_timeout_s=llm_timeout)
        launch = prepare(config, client)
    except InvalidSetting as e:  # name our flags, not the parameters
        raise e.naming(FLAGS) from None
    console().print(key_value_table(launch.summary, title="Forgeline serving"))
    sys.stdout.flush()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server stops: no error
        launch.run()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
