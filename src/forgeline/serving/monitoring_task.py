"""The periodic monitor of ``forgeline serve MODEL --monitor-every 5m``.

Every interval, in a thread of its own (requests never wait for it), the server:

1. writes out the predictions its prediction log still holds in memory (``flush``). The
   log renames each Parquet file into place once it is complete, so the read that follows
   never meets a half-written file;
2. reads the window: the last ``--monitor-window`` (24 hours by default) and/or the last
   ``--monitor-last N`` logged predictions, keeping the rows the primary model answered
   (shadow and canary rows would be compared with a profile that is not theirs);
3. runs :func:`forgeline.monitoring.orchestrator.monitor` against the primary model's
   training profile (the current version, when ``--watch`` swapped it);
4. sets the monitoring gauges (:mod:`forgeline.monitoring.gauges`) in the app's metrics
   registry, so ``/metrics`` exports them;
5. evaluates the alert rules and POSTs the alert payload to the webhook when a rule
   *starts* firing (not again on every run while it keeps firing; the gauge
   ``forgeline_alerts_fired`` shows the current state);
6. logs one line.

A window without predictions yet is not an error: the run is skipped and counted
(``outcome="empty"``). A run that fails is logged and counted (``outcome="failed"``); the
next one tries again and the server keeps serving.

Several workers (``--workers N``): each worker process runs the app's lifespan, so each
starts a task, but only one runs the monitor. They share the folder of prometheus_client's
multiprocess files (one per ``forgeline serve``), and at every tick a worker without the
monitor tries to take an exclusive ``flock`` on ``forgeline-monitor-<model>.lock`` in it;
the one that holds it runs the monitor, the others stand by. The operating system releases
the lock when its holder exits, even on a crash, and another worker takes over at its next
tick. Its gauges are written to the shared files, so whichever worker answers a scrape
reports them. The other workers' prediction logs reach the disk within their flush
interval (5 s), so a run may miss their last few seconds.

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
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeline.errors import ForgelineError, InvalidInput
from forgeline.util.time import format_duration

if TYPE_CHECKING:
    import pandas as pd

    from forgeline.monitoring.result import MonitorResult
    from forgeline.serving.config import ServeConfig
    from forgeline.serving.metrics import ServingMetrics
    from forgeline.serving.models import Deployment, ServedModel

__all__ = ["OUTCOMES", "MonitorTask", "describe", "monitor_task"]

log = logging.getLogger("forgeline.serving")

OUTCOMES = ("ok", "empty", "failed")
DEFAULT_WINDOW_S = 86_400.0
_STOP_TIMEOUT_S = 30.0
_FLUSH_TIMEOUT_S = 2.0
_LOCK_NAME = "forgeline-monitor-{}.lock"


def describe(config: ServeConfig) -> str | None:
    """One line for the start-up summary, or None when the monitor is off."""
    if config.monitor_every_s is None:
        return None
    parts = [f"every {format_duration(config.monitor_every_s)}"]
    window = config.monitor_window_s
    if window is None and config.monitor_last is None:
        window = DEFAULT_WINDOW_S
    if window is not None:
        parts.append(f"last {format_duration(window)} of predictions")
    if config.monitor_last is not None:
        parts.append(f"at most {config.monitor_last:,} rows")
    if config.monitor_rules:
        n = len(config.monitor_rules)
        parts.append(f"{n} alert rule{'s' if n > 1 else ''}"
                     + (" to the webhook" if config.monitor_webhook else ""))
    return ", ".join(parts)


class _WorkerLock:
    """Held by one process at a time among those sharing ``path`` (an exclusive ``flock``,
    released by the operating system when its holder exits). No path: always held."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self.path is None or self._fd is not None

    def acquire(self) -> bool:
        """True when this process holds the lock (now or already)."""
        if self.held:
            return True
        assert self.path is not None
        try:
            import fcntl
        except ImportError:  # no flock here: every worker monitors
            log.warning("monitor: no file locks on this platform; every worker runs it")
            self.path = None
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another worker holds it
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class MonitorTask:
    """Runs the monitor of one served model every ``config.monitor_every_s`` seconds.

    Args:
        config: the server settings (``monitor_*``).
        deployment: the served models; the monitor follows ``deployment.primary``.
        metrics: the app's metrics; the monitor's metrics go in its registry.
        prediction_log: the app's prediction log (flushed before each read).
        log_root: where the prediction logs are (``<home>/predictions``).
    """

    def __init__(self, config: ServeConfig, deployment: Deployment, metrics: ServingMetrics,
                 prediction_log: Any, log_root: Path) -> None:
        from prometheus_client import Counter, Gauge

        from forgeline.monitoring import orchestrator  # noqa: F401 - imported now, at start-up
        from forgeline.monitoring.config import MonitorConfig
        from forgeline.monitoring.gauges import ensure_gauges

        assert config.monitor_every_s is not None
        self.config = config
        self.deployment = deployment
        self.registry = metrics.registry
        self.prediction_log = prediction_log
        self.log_root = Path(log_root)
        self.every_s = float(config.monitor_every_s)
        self.last = config.monitor_last
        self.window_s = config.monitor_window_s
        if self.window_s is None and self.last is None:
            self.window_s = DEFAULT_WINDOW_S
        # Over-time views are for the HTML report; the gauges read the overall values.
        self.monitor_config = MonitorConfig(rules=config.monitor_rules, window=None)
        self.delivery = dataclasses.replace(self.monitor_config, webhook=config.monitor_webhook)
        name = deployment.primary.name
        lock_dir = metrics.multiprocess_dir
        self.lock = _WorkerLock(Path(lock_dir) / _LOCK_NAME.format(name) if lock_dir else None)
        self.runs = Counter("forgeline_monitor_runs", "Periodic monitoring runs, by outcome "
                            "(ok, empty: no predictions in the window yet, failed).",
                            ["model", "outcome"], registry=self.registry)
        self.duration = Gauge("forgeline_monitor_duration_seconds", "How long the last "
                              "monitoring run took.", ["model"], registry=self.registry,
                              multiprocess_mode="livemostrecent")
        ensure_gauges(self.registry)
        self._notified: set[str] = set()
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counted: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background thread; the first run is at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="forgeline-monitor",
                                            daemon=True)
            self._thread.start()

    def halt_on_stop_signals(self) -> None:
        """No run starts once the process is told to stop (SIGTERM, SIGINT), rather than
        once the server has drained its requests: by then the worker holding the lock may
        have left, and a standby worker would take over only to run (and re-send the
        alerts already delivered) while it shuts down too. The server's own handlers still
        run after ours. Only from the main thread, where signal handlers are set."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(signum)
            if not callable(previous):  # no handler to chain: leave the default alone
                continue

            def handler(number: int, frame: Any, previous: Any = previous) -> None:
                self._stop.set()
                previous(number, frame)

            signal.signal(signum, handler)

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> None:
        """Stop after the run in progress (waiting up to ``timeout_s``); release the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("monitor: a run still in progress after %.0f s is left behind",
                            timeout_s)
                return  # the daemon thread ends with the process; it keeps the lock till then
        self.lock.release()

    def _loop(self) -> None:
        next_run = time.monotonic()
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the lock file's folder gone, say: keep the thread alive
                log.exception("monitor: the run could not start")
            next_run = max(next_run + self.every_s, time.monotonic())
            if self._stop.wait(max(0.0, next_run - time.monotonic())):
                return

    # -- one run --------------------------------------------------------------------------
    def run_once(self) -> str:
        """One monitoring run; its outcome (:data:`OUTCOMES`), or ``standby`` when another
        worker runs the monitor."""
        model = self.deployment.primary
        if not self.lock.held:
            if not self.lock.acquire():
                return "standby"
            log.info("monitor %s: this worker (pid %d) runs the monitor; the other workers "
                     "stand by", model.name, os.getpid())
        self._zero(model.name)
        started = time.monotonic()
        outcome, line = "empty", ""
        try:
            frame = self._read(model)
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
                        format_duration(self.every_s))
        return outcome

    def _zero(self, name: str) -> None:
        """Every outcome's counter exists from the first run (0 rather than absent)."""
        if name not in self._counted:
            self._counted.add(name)
            for outcome in OUTCOMES:
                self.runs.labels(name, outcome)

    def _where(self) -> str:
        """The window in words: ``in the last 24h``, ``among the last 500 logged``."""
        if self.window_s is None:
            return f"among the last {self.last:,} logged"
        where = f"in the last {format_duration(self.window_s)}"
        return where if self.last is None else f"{where} (at most the last {self.last:,})"

    def _read(self, model: ServedModel) -> pd.DataFrame:
        from forgeline.serving.predlog import PredictionLog
        from forgeline.store.predictions import read_predictions

        # This worker's queued predictions reach the disk first. Under steady traffic the
        # log's flush waits for an empty queue, so it is bounded: what is not written by
        # then is read at the next run.
        if isinstance(self.prediction_log, PredictionLog):
            self.prediction_log.flush(timeout_s=_FLUSH_TIMEOUT_S)
        elif callable(getattr(self.prediction_log, "flush", None)):
            self.prediction_log.flush()
        since = None
        if self.window_s is not None:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.window_s)
        frame = read_predictions(self.log_root, model.name, since=since, last=self.last)
        if len(frame) and model.version is not None and "model_version" in frame.columns:
            frame = frame[frame["model_version"] == model.version].reset_index(drop=True)
        return frame

    def _monitor(self, model: ServedModel, frame: pd.DataFrame) -> MonitorResult:
        from forgeline.monitoring.gauges import register_gauges
        from forgeline.monitoring.orchestrator import monitor

        result = monitor(model.predictor, frame, config=self.monitor_config)
        register_gauges(result, self.registry)
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


def monitor_task(config: ServeConfig, deployment: Deployment, metrics: ServingMetrics,
                 prediction_log: Any) -> MonitorTask | None:
    """The app's monitor task when ``config.monitor_every_s`` is set, else None.

    Raises:
        InvalidInput: the primary model is not from the registry, so it has no
            prediction log to read.
    """
    if config.monitor_every_s is None:
        return None
    primary = deployment.primary
    if primary.version is None or prediction_log is None:
        raise InvalidInput(f"--monitor-every reads the prediction log, which is kept for "
                           f"registered models only, and {config.model!r} is "
                           + ("a package folder." if primary.version is None
                              else "served without one."),
                           hint="Serve a registered model (name@alias, name/N), or monitor "
                                "with forgeline monitor MODEL --current FILE.")
    from forgeline.store.predictions import prediction_log_root

    directory = getattr(prediction_log, "directory", None)
    root = (Path(directory).parent if directory is not None
            else prediction_log_root(deployment.client.settings))
    return MonitorTask(config, deployment, metrics, prediction_log, root)
