"""Serve a model and monitor what it sees: the model server with its periodic monitor.

:func:`prepare`, :func:`create_app` and :func:`create_app_from_env` are serving's own
(:mod:`forgeline.serving.server`, :mod:`forgeline.serving.app`), plus, when
``config.monitor`` is on, a :class:`PeriodicMonitor` attached to the app as a background
job. Serving runs it without knowing what it is; this module is where the two stages meet.

Every ``monitor.every_s`` seconds, in a thread of its own (requests never wait for it),
the server:

1. writes out the predictions its prediction log still holds in memory (``flush``). The
   log renames each Parquet file into place once it is complete, so the read that follows
   never meets a half-written file;
2. reads the window: the last ``monitor.window_s`` (24 hours by default) and/or the last
   ``monitor.last`` logged predictions, keeping the rows the primary model's current
   version answered (shadow and canary rows would be compared with a profile that is not
   theirs);
3. runs :func:`forgeline.monitoring.orchestrator.monitor` against the primary model's
   training profile (the current version, when a watched alias moved);
4. sets the monitoring gauges (:mod:`forgeline.monitoring.gauges`) in the app's metrics
   registry, so ``/metrics`` exports them, and records the result in the store's
   monitoring history (:mod:`forgeline.monitoring.history`; a store that cannot be
   written costs a warning in the log, not the run);
5. evaluates the alert rules and POSTs the alert payload to the webhook when a rule
   *starts* firing (not again on every run while it keeps firing; the gauge
   ``forgeline_alerts_fired`` shows the current state);
6. logs one line.

A window without predictions yet is not an error: the run is skipped and counted
(``outcome="empty"``). A run that fails is logged and counted (``outcome="failed"``); the
next one tries again and the server keeps serving.

Several workers: each worker process runs the app's lifespan, so each starts a monitor,
but only one runs it. The :class:`~forgeline.workflows.schedule.Schedule` of each holds a
:class:`~forgeline.workflows.schedule.WorkerLock` on ``forgeline-monitor-<model>.lock`` in
the folder of prometheus_client's multiprocess files (one per server): the worker that
holds it runs the monitor, the others stand by and take over when it exits. Its gauges
are written to the shared files, so whichever worker answers a scrape reports them. The
other workers' prediction logs reach the disk within their flush interval (5 s), so a run
may miss their last few seconds.

Metrics, besides the gauges of :mod:`forgeline.monitoring.gauges` (whose
``forgeline_monitor_timestamp_seconds`` is the time of the last successful run)::

    forgeline_monitor_runs_total{model,outcome}    runs by outcome: ok, empty, failed
    forgeline_monitor_duration_seconds{model}      how long the last run took
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeline.errors import ForgelineError, InvalidInput
from forgeline.exposition import MONITOR
from forgeline.serving import app as serving_app
from forgeline.serving import server
from forgeline.serving.app import BackgroundJob, ServingState
from forgeline.serving.config import MonitorSchedule, ServeConfig
from forgeline.util.time import format_duration
from forgeline.workflows.schedule import Schedule, WorkerLock

if TYPE_CHECKING:
    import pandas as pd
    from fastapi import FastAPI

    from forgeline.monitoring.result import MonitorResult
    from forgeline.serving.models import ServedModel
    from forgeline.serving.scoring import PredictionSink
    from forgeline.store import Store
    from forgeline.tracking.client import Client

__all__ = ["APP_FACTORY", "OUTCOMES", "PeriodicMonitor", "Reader", "check_monitor",
           "create_app", "create_app_from_env", "log_reader", "monitor_job", "prepare"]

log = logging.getLogger("forgeline.serving")  # the server's log: the monitor is part of it

APP_FACTORY = "forgeline.workflows.serve:create_app_from_env"
OUTCOMES = ("ok", "empty", "failed")
_STOP_TIMEOUT_S = 30.0
_FLUSH_TIMEOUT_S = 2.0
_LOCK_NAME = "forgeline-monitor-{}.lock"

# The predictions of one model that a monitoring run reads (its window), as logged.
Reader = Callable[["ServedModel"], "pd.DataFrame"]


# -- the flow -------------------------------------------------------------------------------
def check_monitor(config: ServeConfig) -> None:
    """What only the monitor can check, before anything is loaded.

    Raises:
        InvalidSpec: an alert rule does not parse (the message names it and where).
        InvalidInput: the monitor is on for a package folder, which has no prediction log.
    """
    if not config.monitor.on:
        return
    from forgeline.monitoring.rules import parse_rule

    for rule in config.monitor.rules:
        parse_rule(rule)
    if Path(config.model).expanduser().is_dir():
        raise InvalidInput(f"The periodic monitor reads the prediction log, which is kept for "
                           f"registered models only, and {config.model!r} is a package "
                           "folder.", hint="Serve a registered model (name@alias, name/N).")


def create_app(config: ServeConfig, *, client: Client | None = None,
               prediction_log: PredictionSink | None = None,
               own_process: bool = False) -> FastAPI:
    """:func:`forgeline.serving.app.create_app`, with the periodic monitor when
    ``config.monitor`` is on (see the module docstring).

    Raises:
        ForgelineError: a model cannot be resolved or loaded, or the monitor cannot run
            for it (an alert rule that does not parse, a model outside the registry).
    """
    check_monitor(config)
    return serving_app.create_app(config, client=client, prediction_log=prediction_log,
                                  own_process=own_process,
                                  background=[monitor_job] if config.monitor.on else [])


def create_app_from_env() -> FastAPI:
    """:func:`create_app` for the settings in ``FORGELINE_SERVE_CONFIG`` (worker processes)."""
    return create_app(ServeConfig.from_env(), own_process=True)


def prepare(config: ServeConfig, client: Client | None = None) -> server.Launch:
    """Check the monitor's settings, load the models, bind the port: a server ready to run
    (:func:`forgeline.serving.server.prepare` for this module's app).

    Raises:
        ForgelineError: see :func:`create_app`; or the port cannot be bound.
    """
    check_monitor(config)
    return server.prepare(config, client, app_factory=create_app, app_import=APP_FACTORY)


def monitor_job(state: ServingState) -> PeriodicMonitor:
    """The periodic monitor of an app's primary model (a ``background`` job factory).

    Raises:
        InvalidInput: the primary model is not from the registry, or is served without a
            prediction log, so there is nothing to read.
    """
    primary, sink = state.deployment.primary, state.prediction_log
    if primary.version is None or sink is None:
        raise InvalidInput(f"The periodic monitor reads the prediction log, which is kept for "
                           f"registered models only, and {state.config.model!r} is "
                           + ("a package folder." if primary.version is None
                              else "served without one."),
                           hint="Serve a registered model (name@alias, name/N) with its "
                                "prediction log.")
    from forgeline.store.predictions import prediction_log_root

    directory = getattr(sink, "directory", None)
    root = (Path(directory).parent if directory is not None
            else prediction_log_root(state.deployment.client.settings))
    deployment = state.deployment
    return PeriodicMonitor(lambda: deployment.primary,
                           log_reader(root, state.config.monitor, _flusher(sink)),
                           state.config.monitor, state.metrics.registry,
                           lock_dir=state.metrics.multiprocess_dir,
                           store=deployment.client.store)


def log_reader(root: Path, schedule: MonitorSchedule,
               flush: Callable[[], object] | None = None) -> Reader:
    """A :data:`Reader` of the prediction log under ``root`` (``<home>/predictions``).

    Args:
        root: the prediction log's root folder.
        schedule: the window read (``window``, ``last``).
        flush: called before each read, so that this process's queued predictions are on
            disk first.
    """
    window_s, last = schedule.window, schedule.last

    def read(model: ServedModel) -> pd.DataFrame:
        from forgeline.store.predictions import read_predictions

        if flush is not None:
            flush()
        since = None
        if window_s is not None:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=window_s)
        frame = read_predictions(root, model.name, since=since, last=last)
        if len(frame) and model.version is not None and "model_version" in frame.columns:
            frame = frame[frame["model_version"] == model.version].reset_index(drop=True)
        return frame

    return read


def _flusher(sink: Any) -> Callable[[], object] | None:
    """How to write out what the app's prediction log still holds in memory."""
    from forgeline.serving.predlog import PredictionLog

    # Under steady traffic the log's flush waits for an empty queue, so it is bounded:
    # what is not written by then is read at the next run.
    if isinstance(sink, PredictionLog):
        return partial(sink.flush, timeout_s=_FLUSH_TIMEOUT_S)
    flush = getattr(sink, "flush", None)
    return flush if callable(flush) else None


# -- the periodic monitor -------------------------------------------------------------------
class PeriodicMonitor(BackgroundJob):
    """Monitors a served model's predictions every ``schedule.every_s`` seconds.

    Args:
        model: the model to monitor now (the deployment's primary, which a watched alias
            may swap).
        read: the predictions of a model in the window to monitor.
        schedule: how often, the alert rules and the webhook.
        registry: the prometheus_client registry its metrics and gauges go in.
        lock_dir: the folder where the processes sharing the monitor hold its lock; None:
            this process runs it alone.
        store: where each run's result is recorded (its monitoring history); None: nowhere.
    """

    def __init__(self, model: Callable[[], ServedModel], read: Reader,
                 schedule: MonitorSchedule, registry: Any,
                 lock_dir: str | Path | None = None, store: Store | None = None) -> None:
        from prometheus_client import Counter, Gauge

        from forgeline.monitoring import orchestrator  # noqa: F401 - imported now, at start-up
        from forgeline.monitoring.config import MonitorConfig
        from forgeline.monitoring.gauges import ensure_gauges

        if schedule.every_s is None:
            raise InvalidInput("The monitor schedule is off: give its every_s.")
        self.model = model
        self.read = read
        self.schedule = schedule
        self.registry = registry
        self.store = store
        # Over-time views are for the HTML report; the gauges read the overall values.
        self.monitor_config = MonitorConfig(rules=schedule.rules, window=None)
        self.delivery = dataclasses.replace(self.monitor_config, webhook=schedule.webhook)
        name = model().name
        lock = WorkerLock(Path(lock_dir) / _LOCK_NAME.format(name) if lock_dir else None)
        self.runner = Schedule(self._run, schedule.every_s, name="forgeline-monitor", lock=lock,
                               on_lead=partial(self._lead, name))
        runs, duration = MONITOR  # the names alert rules and dashboards know them by
        self.runs = Counter(runs, "Periodic monitoring runs, by outcome "
                            "(ok, empty: no predictions in the window yet, failed).",
                            ["model", "outcome"], registry=registry)
        self.duration = Gauge(duration, "How long the last "
                              "monitoring run took.", ["model"], registry=registry,
                              multiprocess_mode="livemostrecent")
        ensure_gauges(registry)
        self._notified: set[str] = set()
        self._warned: set[str] = set()
        self._counted: set[str] = set()

    # -- lifecycle (BackgroundJob) --------------------------------------------------------
    def start(self) -> None:
        """Start the background thread; the first run is at once."""
        self.runner.start()

    def halt_on_stop_signals(self) -> None:
        """No run starts once the process is told to stop (see
        :meth:`~forgeline.workflows.schedule.Schedule.halt_on_stop_signals`): a standby
        worker would otherwise take over mid-shutdown and re-send the alerts."""
        self.runner.halt_on_stop_signals()

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> bool:
        """Stop after the run in progress (waiting up to ``timeout_s``); release the lock."""
        return self.runner.stop(timeout_s)

    # -- one run --------------------------------------------------------------------------
    def run_once(self) -> str:
        """One monitoring run now; its outcome (:data:`OUTCOMES`), or ``standby`` when
        another worker runs the monitor."""
        return str(self.runner.tick())

    def _lead(self, name: str) -> None:
        log.info("monitor %s: this worker (pid %d) runs the monitor; the other workers "
                 "stand by", name, os.getpid())

    def _run(self) -> str:
        model = self.model()
        self._zero(model.name)
        started = time.monotonic()
        outcome, line = "empty", ""
        try:
            frame = self.read(model)
            if len(frame):
                result = self._monitor(model, frame)
                outcome, line = "ok", f"{_summary(result, self._where())}; {self._alert(result)}"
        except Exception as e:
            outcome = "failed"
            line = str(e) if isinstance(e, ForgelineError) else f"{type(e).__name__}: {e}"
            log.debug("monitor %s: the failed run", model.label, exc_info=True)
        seconds = time.monotonic() - started
        self.runs.labels(model.name, outcome).inc()
        self.duration.labels(model.name).set(seconds)
        if outcome == "ok":
            log.info("monitor %s: %s (%.2f s)", model.label, line, seconds)
        elif outcome == "empty":
            log.info("monitor %s: no predictions %s yet; skipped", model.label, self._where())
        else:
            log.warning("monitor %s: run failed (%s); next run in %s", model.label, line,
                        format_duration(self.runner.every_s))
        return outcome

    def _zero(self, name: str) -> None:
        """Every outcome's counter exists from the first run (0 rather than absent)."""
        if name not in self._counted:
            self._counted.add(name)
            for outcome in OUTCOMES:
                self.runs.labels(name, outcome)

    def _where(self) -> str:
        """The window in words: ``in the last 24h``, ``among the last 500 logged``."""
        window, last = self.schedule.window, self.schedule.last
        if window is None:
            return f"among the last {last:,} logged"
        where = f"in the last {format_duration(window)}"
        return where if last is None else f"{where} (at most the last {last:,})"

    def _monitor(self, model: ServedModel, frame: pd.DataFrame) -> MonitorResult:
        from forgeline.monitoring.gauges import register_gauges
        from forgeline.monitoring.orchestrator import monitor

        result = monitor(model.predictor, frame, config=self.monitor_config)
        register_gauges(result, self.registry)
        if self.store is not None:
            from forgeline.monitoring.history import record_result

            failure = record_result(self.store, result, source="serve", model=model.name)
            if failure:
                log.warning("monitor %s: %s", model.label, failure)
        for warning in result.warnings:
            if warning not in self._warned:
                log.warning("monitor %s: %s", model.label, warning)
        self._warned = set(result.warnings)
        return result

    def _alert(self, result: MonitorResult) -> str:
        """Deliver the rules that started firing; a few words on what happened."""
        from forgeline.monitoring.alerts import deliver
        from forgeline.monitoring.orchestrator import alert_payload

        if not result.alerts:
            return "no alert rules"
        fired = {a.rule for a in result.fired}
        self._notified &= fired  # a rule that stopped firing notifies again next time
        new = fired - self._notified
        text = f"{len(fired)} of {len(result.alerts)} alert rules firing"
        if not new:
            return text
        text += f" ({len(new)} new: {'; '.join(sorted(new))})"
        if self.delivery.webhook is None:
            self._notified |= new
            return text
        failures = deliver(alert_payload(result), self.delivery)
        for failure in failures:
            log.warning("monitor %s: %s; retried at the next run", result.model, failure)
        if failures:
            return text + ", not delivered"
        self._notified |= new
        return text + ", delivered to the webhook"


def _summary(result: MonitorResult, where: str) -> str:
    d = result.dataset
    parts = [f"{result.rows:,} rows {where}".rstrip(),
             f"{d.n_drifted} of {d.n_features} features drifted ({d.share:.0%})"
             + (", dataset drifted" if d.drifted else "")]
    if result.prediction is not None:
        parts.append("prediction drifted" if result.prediction.drifted
                     else "predictions stable")
    perf = result.performance
    if perf is not None:
        for prefix, values in (("", perf.realized), ("estimated ", perf.estimated)):
            name = next((m for m in ("roc_auc", "f1_macro", "rmse")
                         if values.get(m) is not None), None)
            if name:
                parts.append(f"{prefix}{name} {values[name]:.4g}")
                break
    issues = sum(str(i.severity) != "info" for i in result.quality.issues)
    if issues:
        parts.append(f"{issues} quality issue{'s' if issues > 1 else ''}")
    return ", ".join(parts)
