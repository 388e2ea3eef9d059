"""A live run: params, tags and artifacts written at once; metric points buffered.

Metric points go to an in-memory buffer and reach the store in batches: when the buffer
holds ``metric_flush_size`` points, at the first call after ``metric_flush_interval_s``,
on :meth:`ActiveRun.flush`, and when the run ends. That is what makes call-by-call
logging cost microseconds instead of a database transaction.

Into a remote store (``Store.remote``: a team server) a full batch is sent from a
background thread while the logging loop fills the next one, so the rate is bound by the
slower of the two, not their sum. At most one batch is in flight: the next full batch
waits for it (the loop cannot outrun the server without bound), points reach the store in
the order logged, and a batch the store refused is put back in front of the buffer and its
error raised by the next call (``log_metric``, :meth:`ActiveRun.flush` or
:meth:`ActiveRun.end`). :meth:`ActiveRun.flush` and :meth:`ActiveRun.end` return once
every point is stored.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import numbers
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from forgeline.entities import Artifact, Dataset, Run, RunStatus
from forgeline.errors import InvalidInput, NotFound
from forgeline.names import check_key
from forgeline.store.artifacts import ArtifactStore, safe_artifact_path
from forgeline.store.base import MetricPoint, Store
from forgeline.tracking import heartbeat
from forgeline.util.time import now_ms

__all__ = ["ActiveRun", "RunOwner"]


class RunOwner(Protocol):
    """What a run needs of the client that started it (a
    :class:`~forgeline.tracking.client.Client`): where to write records and artifact bytes."""

    store: Store
    artifacts: ArtifactStore

# Runs started and not yet ended in this process: ended at exit so no point is lost.
_live: set[ActiveRun] = set()
_crashed = False  # an uncaught exception is ending the process


def _note_crash(kind: type[BaseException], value: BaseException, tb: TracebackType | None
                ) -> None:
    global _crashed
    _crashed = True
    _previous_excepthook(kind, value, tb)


_previous_excepthook = sys.excepthook


@atexit.register
def _end_live_runs() -> None:
    for run in list(_live):
        with contextlib.suppress(Exception):  # the store may be gone; exit regardless
            run.end(RunStatus.FAILED if _crashed else RunStatus.FINISHED)


def metric_value(key: str, value: Any) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise InvalidInput(f"Metric {key!r} must be a number, got {type(value).__name__} "
                       f"{value!r}.", hint="Log text as a tag or a param instead.")


def metric_step(value: Any) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise InvalidInput(f"Metric step must be a whole number, got {value!r}.")


def param_value(value: Any) -> str:
    """Params are stored as text; floats keep their shortest exact form (0.1, not 0.1000..)."""
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(value)


class ActiveRun:
    """Handle on a RUNNING run. Use it as a context manager, or call :meth:`end`."""

    def __init__(self, client: RunOwner, run: Run, flush_size: int, flush_interval_s: float,
                 heartbeat_s: float) -> None:
        self.client = client
        self.run_id = run.run_id
        self.experiment_id = run.experiment_id
        self.name = run.name
        self.parent_run_id = run.parent_run_id
        self._store = client.store
        self._buffer: list[MetricPoint] = []
        self._lock = threading.Lock()
        self._flush_size = flush_size
        self._flush_interval = flush_interval_s
        self._flush_due = 0  # ms since the epoch: flush at the first point after this
        # a remote store: the batch being sent in the background, and its sender
        self._sending: tuple[Future[None], list[MetricPoint]] | None = None
        self._sender: ThreadPoolExecutor | None = None
        self._keys: set[str] = set()
        self._ended = False
        self.on_end: Callable[[], None] | None = None  # the fluent API resets its context
        heartbeat.beat(self._store, self.run_id, heartbeat_s)
        if sys.excepthook is not _note_crash:
            global _previous_excepthook
            _previous_excepthook, sys.excepthook = sys.excepthook, _note_crash
        _live.add(self)

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, name={self.name!r})"

    # -- metrics ------------------------------------------------------------------------
    def log_metric(self, key: str, value: float, step: int = 0,
                   timestamp: int | None = None) -> None:
        """Record one point. NaN and ±inf are kept as they are."""
        if key not in self._keys:
            self._keys.add(check_key(key, "metric key"))
        if type(value) is not float:
            value = metric_value(key, value)
        if type(step) is not int:
            step = metric_step(step)
        now = now_ms()
        with self._lock:
            buffer = self._buffer
            buffer.append((key, value, step, now if timestamp is None else int(timestamp)))
            if len(buffer) >= self._flush_size or now >= self._flush_due:
                self._flush_locked(wait=False)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0,
                    timestamp: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step, timestamp)

    def flush(self) -> None:
        """Write buffered metric points now; return once every point is stored."""
        with self._lock:
            self._flush_locked(wait=True)

    def _flush_locked(self, wait: bool) -> None:
        self._flush_due = now_ms() + int(self._flush_interval * 1000)
        self._settle()
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        if wait or not self._store.remote:
            try:
                self._store.log_metrics(self.run_id, batch)
            except BaseException:
                self._buffer = batch + self._buffer  # kept for the next try
                raise
            return
        if self._sender is None:
            self._sender = ThreadPoolExecutor(1, thread_name_prefix=f"forgeline-{self.name}")
        self._sending = (self._sender.submit(self._store.log_metrics, self.run_id, batch),
                         batch)

    def _settle(self) -> None:
        """Wait for the batch in flight; one the store refused goes back in front of the
        buffer (nothing is lost, the order is kept) and its error is raised here."""
        if self._sending is None:
            return
        future, batch = self._sending
        self._sending = None
        try:
            future.result()
        except BaseException:
            self._buffer = batch + self._buffer
            raise

    # -- params, tags, artifacts, datasets ------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._store.log_batch(self.run_id, params={k: param_value(v) for k, v in params.items()})

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._store.log_batch(self.run_id, tags={k: str(v) for k, v in tags.items()})

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> list[str]:
        """Log a file (as ``artifact_path/<name>``) or a directory (its tree under
        ``artifact_path``, by default the directory's name). Returns the stored paths.
        """
        source = Path(local_path)
        if source.is_dir():
            base = safe_artifact_path(artifact_path or source.name)
            files = sorted(p for p in source.rglob("*") if p.is_file())
            names = [f"{base}/{p.relative_to(source).as_posix()}" for p in files]
        elif source.is_file():
            files = [source]
            names = [safe_artifact_path(f"{artifact_path}/{source.name}" if artifact_path
                                        else source.name)]
        else:
            raise NotFound(f"Cannot log artifact {str(source)!r}: no such file or directory.")
        artifacts = self.client.artifacts
        records = [Artifact(name, artifacts.put(p), p.stat().st_size)
                   for name, p in zip(names, files, strict=True)]
        self._store.record_artifacts(self.run_id, records)
        return names

    def log_dataset(self, dataset: Dataset, context: str = "train") -> None:
        """Link a dataset version to this run (its lineage)."""
        self._store.log_dataset(self.run_id, dataset, context)

    # -- lifecycle ------------------------------------------------------------------------
    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush, then record the final status and end time. Calling it again does nothing."""
        if self._ended:
            return
        self._ended = True
        _live.discard(self)
        heartbeat.stop_beating(self.run_id)
        try:
            self.flush()
        finally:
            if self._sender is not None:
                self._sender.shutdown(wait=True)
            self._store.set_run_status(self.run_id, RunStatus(status),
                                       now_ms())
            if self.on_end is not None:
                self.on_end()

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(kind, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)
